package testutil

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestimg"
)

// ModuleRoot returns the repository root (the directory holding go.mod).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not inside the vireo module")
	}
	return filepath.Dir(gomod)
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// VireoBinary builds cmd/vireo once per test binary and returns its path.
func VireoBinary(t testing.TB) string {
	t.Helper()
	root := ModuleRoot(t)
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vireo-bin-")
		if err != nil {
			buildErr = err
			return
		}
		os.Chmod(dir, 0o755)
		buildPath = filepath.Join(dir, "vireo")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/vireo")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/vireo: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// GuestFile returns the path of a file of the prebuilt test guest
// ("vmlinux", "bzImage"), from $VIREO_SHARED_GUEST, ../shared/guest next to
// the repository, or the guest build cache; it skips (fails under CI) when
// none has it.
func GuestFile(t testing.TB, name string) string {
	t.Helper()
	root := ModuleRoot(t)
	var dirs []string
	if d := os.Getenv("VIREO_SHARED_GUEST"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, filepath.Join(root, "..", "shared", "guest"))
	cache := os.Getenv("VIREO_CACHE")
	if cache == "" {
		if c, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(c, "vireo")
		}
	}
	if cache != "" {
		dirs = append(dirs, filepath.Join(cache, "guest"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	Unavailable(t, "no guest %s in %s (run guest/build-kernel.sh)", name, strings.Join(dirs, ", "))
	return ""
}

// Guest is a running `vireo run` process driven through its console.
type Guest struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	out    bytes.Buffer
	stderr bytes.Buffer
	seen   int // console offset consumed by Expect
	change chan struct{}
	done   chan struct{}
	err    error
}

// StartGuest runs the vireo binary with args; stdin is a pipe, so the
// console is exercised without a terminal.
func StartGuest(t testing.TB, args ...string) *Guest {
	t.Helper()
	return startGuest(t, exec.Command(VireoBinary(t), args...))
}

// StartGuestUnder is StartGuest with the vireo binary run by a wrapper
// command that execs it, such as `ip netns exec NAME`: wrapper is that
// command's program and arguments. The process is killed if the test
// binary dies first.
func StartGuestUnder(t testing.TB, wrapper []string, args ...string) *Guest {
	t.Helper()
	if len(wrapper) == 0 {
		t.Fatal("StartGuestUnder: empty wrapper command")
	}
	argv := append(slices.Clone(wrapper[1:]), VireoBinary(t))
	cmd := exec.Command(wrapper[0], append(argv, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return startGuest(t, cmd)
}

// startGuest starts cmd, a vireo process, with its console on pipes.
func startGuest(t testing.TB, cmd *exec.Cmd) *Guest {
	t.Helper()
	g := &Guest{t: t, cmd: cmd, change: make(chan struct{}, 1), done: make(chan struct{})}
	var err error
	if g.stdin, err = g.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	g.cmd.Stdout = writerFunc(g.write)
	g.cmd.Stderr = &lockedWriter{mu: &g.mu, b: &g.stderr}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		g.err = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		select {
		case <-g.done:
		default:
			g.cmd.Process.Kill()
			<-g.done
		}
		if t.Failed() {
			t.Logf("console output:\n%s\nstderr:\n%s", g.Output(), g.Stderr())
		}
	})
	return g
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (g *Guest) write(p []byte) (int, error) {
	g.mu.Lock()
	g.out.Write(p)
	g.mu.Unlock()
	select {
	case g.change <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Output returns everything the guest printed so far.
func (g *Guest) Output() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.out.String()
}

// Stderr returns the VMM's standard error so far.
func (g *Guest) Stderr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stderr.String()
}

// Expect waits until re matches console output after the previous match
// and returns the submatches.
func (g *Guest) Expect(re string, timeout time.Duration) []string {
	g.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		g.mu.Lock()
		s := g.out.String()[g.seen:]
		if loc := rx.FindStringSubmatchIndex(s); loc != nil {
			m := rx.FindStringSubmatch(s)
			g.seen += loc[1]
			g.mu.Unlock()
			return m
		}
		g.mu.Unlock()
		select {
		case <-g.change:
		case <-g.done:
			// Process ended: one last look at the output, then fail.
			g.mu.Lock()
			s := g.out.String()[g.seen:]
			g.mu.Unlock()
			if m := rx.FindStringSubmatch(s); m != nil {
				return m
			}
			g.t.Fatalf("vireo exited (%v) before console matched %q", g.err, re)
		case <-deadline.C:
			g.t.Fatalf("timed out after %v waiting for console to match %q", timeout, re)
		}
	}
}

// Send writes s to the guest console.
func (g *Guest) Send(s string) {
	g.t.Helper()
	if _, err := io.WriteString(g.stdin, s); err != nil {
		g.t.Fatalf("writing to console: %v", err)
	}
}

var cmdSeq int
var cmdSeqMu sync.Mutex

// Run runs a shell command in the guest and returns its output (trimmed).
// The command's output is framed by markers that the shell's echo of the
// typed line cannot produce.
//
// A command whose output is "Segmentation fault" is run once more: on the
// emulator-assisted development host a program that starts while another
// guest process keeps the CPU busy often faults at its first thread-local
// access, under QEMU as under Vireo (about half of 100 starts of busybox
// beside a busy loop, in either VMM; none of 300 in an idle guest). The
// retry is logged.
func (g *Guest) Run(command string, timeout time.Duration) string {
	g.t.Helper()
	out := g.run(command, timeout)
	if strings.Contains(out, "Segmentation fault") {
		g.t.Logf("guest command %q faulted (%q); running it again", command, out)
		out = g.run(command, timeout)
	}
	return out
}

func (g *Guest) run(command string, timeout time.Duration) string {
	g.t.Helper()
	cmdSeqMu.Lock()
	cmdSeq++
	n := cmdSeq
	cmdSeqMu.Unlock()
	g.Send(fmt.Sprintf("echo B$((%d+0))E; %s; echo B$((%d+1))E\n", n*2, command, n*2))
	g.Expect(fmt.Sprintf(`B%dE\r?\n`, n*2), timeout)
	m := g.Expect(fmt.Sprintf(`(?s)^(.*?)B%dE`, n*2+1), timeout)
	return strings.TrimSpace(strings.ReplaceAll(m[1], "\r", ""))
}

// Wait waits for the process to exit and returns its exit code.
func (g *Guest) Wait(timeout time.Duration) int {
	g.t.Helper()
	select {
	case <-g.done:
	case <-time.After(timeout):
		g.t.Fatalf("vireo did not exit within %v", timeout)
	}
	if g.cmd.ProcessState == nil {
		return -1
	}
	return g.cmd.ProcessState.ExitCode()
}

// Done is closed when the process has exited.
func (g *Guest) Done() <-chan struct{} { return g.done }

// Process returns the OS process.
func (g *Guest) Process() *os.Process { return g.cmd.Process }

// RunVireo runs the vireo binary to completion with a timeout and returns
// its exit code, stdout and stderr.
func RunVireo(t testing.TB, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, VireoBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = strings.NewReader("")
	err := cmd.Run()
	code := 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			t.Fatalf("running vireo: %v", err)
		}
	}
	return code, stdout.String(), stderr.String()
}

// DefaultCmdline returns the project's default guest command line (guest/cmdline).
func DefaultCmdline(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ModuleRoot(t), "guest", "cmdline"))
	if err != nil {
		t.Fatalf("reading guest/cmdline: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// DefaultInitrd returns the default busybox initramfs, building it into the
// cache if needed; it skips (fails under CI) when busybox-static is missing.
func DefaultInitrd(t testing.TB) string {
	t.Helper()
	p, err := guestimg.DefaultInitrd()
	if err != nil {
		Unavailable(t, "cannot build the default initramfs: %v", err)
	}
	return p
}
