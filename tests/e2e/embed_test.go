package e2e

import (
	"bytes"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo"
	"github.com/vireo-vmm/vireo/internal/testutil"
)

// syncBuffer collects console output from the VM's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) waitFor(t *testing.T, re string, timeout time.Duration) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for !rx.MatchString(s.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("console never matched %q; output:\n%s", re, s.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEmbeddedVM drives a VM through the public Go package: start, console
// in and out, pause, resume, invalid transitions, events, stop and wait.
func TestEmbeddedVM(t *testing.T) {
	t.Parallel()
	kernel := requireGuest(t, "vmlinux")
	var out syncBuffer
	vm, err := vireo.New(vireo.Config{
		Kernel: kernel, Initrd: testutil.DefaultInitrd(t), Cmdline: testutil.DefaultCmdline(t),
		CPUs: 1, MemoryMiB: 128, Console: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := vm.Pause(); !errors.Is(err, vireo.ErrNotStarted) {
		t.Errorf("Pause before Start: %v", err)
	}
	var evMu sync.Mutex
	var events []string
	cancel := vm.Subscribe(func(e vireo.Event) {
		evMu.Lock()
		events = append(events, e.Kind)
		evMu.Unlock()
	})
	defer cancel()

	if err := vm.Start(); err != nil {
		t.Fatal(err)
	}
	if vm.State() != vireo.StateRunning {
		t.Errorf("state after Start: %s", vm.State())
	}
	out.waitFor(t, `~ # `, bootTimeout)
	vm.Console().Write([]byte("echo A$((40+2))Z\n"))
	out.waitFor(t, `A42Z`, cmdTimeout)

	if err := vm.Resume(); !errors.Is(err, vireo.ErrState) {
		t.Errorf("Resume while running: %v, want ErrState", err)
	}
	if err := vm.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := vm.Pause(); !errors.Is(err, vireo.ErrState) {
		t.Errorf("Pause while paused: %v, want ErrState", err)
	}
	if vm.State() != vireo.StatePaused {
		t.Errorf("state after Pause: %s", vm.State())
	}
	vm.Console().Write([]byte("echo P$((1+1))Q\n"))
	time.Sleep(2 * time.Second)
	if bytes.Contains([]byte(out.String()), []byte("P2Q")) {
		t.Fatal("a paused guest answered its console")
	}
	if err := vm.Resume(); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, `P2Q`, cmdTimeout)

	if err := vm.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := vm.Wait(); err != nil {
		t.Errorf("Wait after Stop: %v", err)
	}
	if vm.State() != vireo.StateStopped {
		t.Errorf("state after Wait: %s", vm.State())
	}
	evMu.Lock()
	got := append([]string(nil), events...)
	evMu.Unlock()
	want := []string{"START", "STOP", "RESUME", "SHUTDOWN"}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("events %v, want %v", got, want)
			break
		}
	}
}
