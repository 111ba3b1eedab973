package fcapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vmetrics "github.com/vireo-vmm/vireo/internal/metrics"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// fakeVM stands in for a running VM: no KVM needed.
type fakeVM struct {
	mu       sync.Mutex
	state    vmm.State
	pauses   int
	resumes  int
	cad      int
	failNext error
	exits    ExitCounts
	snap     vmetrics.Snapshot
	// The balloon: what Balloon reports, and the sizes and intervals set.
	balloon   vmm.BalloonInfo
	sizes     []uint64
	intervals []time.Duration
}

func (f *fakeVM) take() error {
	err := f.failNext
	f.failNext = nil
	return err
}

func (f *fakeVM) Pause() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.take(); err != nil {
		return err
	}
	f.pauses++
	f.state = vmm.StatePaused
	return nil
}

func (f *fakeVM) Resume() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.take(); err != nil {
		return err
	}
	f.resumes++
	f.state = vmm.StateRunning
	return nil
}

func (f *fakeVM) SendCtrlAltDel() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.take(); err != nil {
		return err
	}
	f.cad++
	return nil
}

func (f *fakeVM) State() vmm.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *fakeVM) ExitCounts() ExitCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exits
}

func (f *fakeVM) Metrics() vmetrics.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeVM) setMetrics(s vmetrics.Snapshot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snap = s
}

func (f *fakeVM) Balloon() (vmm.BalloonInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.balloon, f.take()
}

func (f *fakeVM) SetBalloonSize(n uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.take(); err != nil {
		return err
	}
	f.sizes = append(f.sizes, n)
	return nil
}

func (f *fakeVM) SetBalloonStatsInterval(d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.take(); err != nil {
		return err
	}
	f.intervals = append(f.intervals, d)
	return nil
}

func (f *fakeVM) setExits(e ExitCounts) {
	f.mu.Lock()
	f.exits = e
	f.mu.Unlock()
}

// harness is a server wired to a fake VM, with files in a temp dir.
type harness struct {
	t        *testing.T
	s        *Server
	vm       *fakeVM
	dir      string
	kernel   string
	initrd   string
	mu       sync.Mutex
	started  []vmm.Config
	startErr error
}

func newHarness(t *testing.T, mod ...func(*Options)) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, vm: &fakeVM{state: vmm.StateRunning}, dir: dir}
	h.kernel = h.file("vmlinux", "kernel")
	h.initrd = h.file("initrd.cpio", "initrd")
	opts := Options{
		Version:         "1.2.3",
		DefaultCmdline:  "console=ttyS0 default",
		Log:             slog.New(slog.DiscardHandler),
		MetricsInterval: -1,
		Start: func(cfg vmm.Config) (Instance, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.startErr != nil {
				return nil, h.startErr
			}
			h.started = append(h.started, cfg)
			return h.vm, nil
		},
	}
	for _, m := range mod {
		m(&opts)
	}
	h.s = New(opts)
	t.Cleanup(func() { h.s.Close() })
	return h
}

// file creates a file in the harness directory and returns its path.
func (h *harness) file(name, content string) string {
	h.t.Helper()
	p := filepath.Join(h.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// do sends one request and returns the status and body.
func (h *harness) do(method, path, body string) (int, string) {
	h.t.Helper()
	r := h.s.Handle(method, path, []byte(body))
	if r.Status == http.StatusNoContent && len(r.Body) != 0 {
		h.t.Fatalf("%s %s: 204 with a body %q", method, path, r.Body)
	}
	return r.Status, string(r.Body)
}

// ok sends a request that must succeed with 204.
func (h *harness) ok(method, path, body string) {
	h.t.Helper()
	if st, b := h.do(method, path, body); st != http.StatusNoContent {
		h.t.Fatalf("%s %s %s: status %d %s, want 204", method, path, body, st, b)
	}
}

// get sends a GET that must succeed and decodes its body into v.
func (h *harness) get(path string, v any) {
	h.t.Helper()
	st, b := h.do(http.MethodGet, path, "")
	if st != http.StatusOK {
		h.t.Fatalf("GET %s: status %d %s", path, st, b)
	}
	if err := json.Unmarshal([]byte(b), v); err != nil {
		h.t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

// fault sends a request that must fail with 400 and a fault message
// containing want.
func (h *harness) fault(method, path, body, want string) {
	h.t.Helper()
	st, b := h.do(method, path, body)
	if st != http.StatusBadRequest {
		h.t.Fatalf("%s %s %s: status %d %s, want 400", method, path, body, st, b)
	}
	msg := faultMessage(h.t, b)
	if !strings.Contains(msg, want) {
		h.t.Fatalf("%s %s %s: fault %q does not contain %q", method, path, body, msg, want)
	}
}

// boot configures a kernel and starts the fake VM.
func (h *harness) boot() {
	h.t.Helper()
	h.ok("PUT", "/boot-source", `{"kernel_image_path":"`+h.kernel+`"}`)
	h.ok("PUT", "/actions", `{"action_type":"InstanceStart"}`)
}

func (h *harness) lastStart() vmm.Config {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.started) == 0 {
		h.t.Fatal("the VM was not started")
	}
	return h.started[len(h.started)-1]
}

// faultMessage decodes a fault body strictly.
func faultMessage(t testing.TB, body string) string {
	t.Helper()
	var f map[string]any
	if err := json.Unmarshal([]byte(body), &f); err != nil {
		t.Fatalf("fault body %q is not JSON: %v", body, err)
	}
	msg, ok := f["fault_message"].(string)
	if !ok || len(f) != 1 || msg == "" {
		t.Fatalf("fault body %q is not {\"fault_message\": \"...\"}", body)
	}
	return msg
}

var errFake = errors.New("fake failure")
