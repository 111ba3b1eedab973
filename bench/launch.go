package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors from one boot.
var (
	ErrTimeout    = errors.New("marker did not appear in time")
	ErrExited     = errors.New("process exited before the marker")
	ErrNoMarkerIO = errors.New("console output closed before the marker")
)

// launch describes one VMM process to boot until its console shows a marker.
type launch struct {
	Name    string   // for messages: "vireo", "qemu"
	Argv    []string // program and arguments
	Marker  []byte   // console bytes that end the timed part
	Timeout time.Duration
	// AfterMarker, if set, runs once the marker is seen, while the process
	// is still running; its error fails the boot.
	AfterMarker func(pid int) error
}

// bootResult is what one boot measured.
type bootResult struct {
	ToMarker time.Duration // from just before exec to the marker on stdout
}

// run starts the process, waits for the marker on its stdout, calls
// AfterMarker, and kills the process and its process group on every path.
func (l launch) run(ctx context.Context) (bootResult, error) {
	if len(l.Argv) == 0 || len(l.Marker) == 0 {
		return bootResult{}, fmt.Errorf("%s: empty command or marker", l.Name)
	}
	// stdin is a pipe nobody writes to: an idle console, the same for both.
	inR, inW, err := os.Pipe()
	if err != nil {
		return bootResult{}, fmt.Errorf("%s: stdin pipe: %w", l.Name, err)
	}
	defer inW.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		return bootResult{}, fmt.Errorf("%s: stdout pipe: %w", l.Name, err)
	}
	defer outR.Close()
	stderr := &tailBuffer{max: 4 << 10}

	cmd := exec.Command(l.Argv[0], l.Argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, stderr
	// Own process group, so one kill reaches any children; killed as well
	// if this program dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Do not wait long for stderr to close after the process ends: a
	// stray descendant outside the group may hold it open.
	cmd.WaitDelay = 2 * time.Second

	start := time.Now()
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		return bootResult{}, fmt.Errorf("%s: start %s: %w", l.Name, l.Argv[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	kill := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}

	seen := make(chan time.Time, 1)
	var console tailBuffer
	console.max = 4 << 10
	scanDone := make(chan error, 1)
	go func() { scanDone <- watchMarker(outR, l.Marker, seen, &console) }()

	timer := time.NewTimer(l.Timeout)
	defer timer.Stop()
	var at time.Time
	var failure error
	select {
	case at = <-seen:
	case err := <-exited:
		exited <- err // for kill
		failure = fmt.Errorf("%w (%v)", ErrExited, err)
	case err := <-scanDone:
		scanDone <- err
		failure = ErrNoMarkerIO
		if err != nil {
			failure = fmt.Errorf("%w: %w", ErrNoMarkerIO, err)
		}
	case <-timer.C:
		failure = fmt.Errorf("%w (%v)", ErrTimeout, l.Timeout)
	case <-ctx.Done():
		kill()
		return bootResult{}, fmt.Errorf("%s: %w", l.Name, ctx.Err())
	}
	if failure != nil {
		kill()
		// The marker may have arrived just before the process ended:
		// drain the console, then look once more.
		select {
		case <-scanDone:
		case <-time.After(time.Second):
		}
		select {
		case at = <-seen:
			if l.AfterMarker == nil {
				return bootResult{ToMarker: at.Sub(start)}, nil
			}
		default:
		}
		return bootResult{}, fmt.Errorf("%s: %w%s", l.Name, failure, l.context(stderr, &console))
	}
	res := bootResult{ToMarker: at.Sub(start)}
	if l.AfterMarker != nil {
		if err := l.AfterMarker(cmd.Process.Pid); err != nil {
			kill()
			return bootResult{}, fmt.Errorf("%s: %w", l.Name, err)
		}
	}
	kill()
	return res, nil
}

// context formats the last output of a failed boot for its error message.
func (l launch) context(stderr, console *tailBuffer) string {
	var b strings.Builder
	if s := strings.TrimSpace(stderr.String()); s != "" {
		fmt.Fprintf(&b, "\n  stderr: %s", strings.ReplaceAll(s, "\n", "\n          "))
	}
	if s := strings.TrimSpace(console.String()); s != "" {
		fmt.Fprintf(&b, "\n  console (last bytes): %q", s)
	}
	return b.String()
}

// watchMarker reads r until marker appears, sends the time of the read
// that completed it on seen, and keeps draining r (so the process never
// blocks on a full pipe) into tail until r ends. It returns the read
// error, or nil at end of file.
func watchMarker(r io.Reader, marker []byte, seen chan<- time.Time, tail *tailBuffer) error {
	buf := make([]byte, 32<<10)
	// window holds the last len(marker)-1 bytes, so a marker split across
	// reads is found.
	window := make([]byte, 0, 2*len(buf))
	found := false
	for {
		n, err := r.Read(buf)
		now := time.Now()
		if n > 0 {
			tail.Write(buf[:n])
			if !found {
				window = append(window, buf[:n]...)
				if bytes.Contains(window, marker) {
					found = true
					seen <- now
				} else if keep := len(marker) - 1; len(window) > keep {
					window = append(window[:0], window[len(window)-keep:]...)
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent
// use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
