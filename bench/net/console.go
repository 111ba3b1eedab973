package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrTimeout reports console output that did not appear in time.
var ErrTimeout = errors.New("timed out")

// vm is one VMM process, its serial console on a pipe pair.
type vm struct {
	name   string
	cmd    *exec.Cmd
	stdin  *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	seen   int
	change chan struct{}
	done   chan struct{}
	stderr bytes.Buffer
}

// startVM runs argv inside the network namespace ns (via `ip netns exec`,
// which execs, so the process is the VMM itself).
func startVM(name, ns string, argv []string) (*vm, error) {
	v := &vm{name: name, change: make(chan struct{}, 1), done: make(chan struct{})}
	v.cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	v.stdin = inW
	v.cmd.Stdin = inR
	v.cmd.Stdout = writerFunc(v.write)
	v.cmd.Stderr = &lockedBuffer{mu: &v.mu, b: &v.stderr}
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := v.cmd.Start(); err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	inR.Close()
	go func() {
		v.cmd.Wait()
		close(v.done)
	}()
	return v, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (v *vm) write(p []byte) (int, error) {
	v.mu.Lock()
	v.out.Write(p)
	v.mu.Unlock()
	select {
	case v.change <- struct{}{}:
	default:
	}
	return len(p), nil
}

// expect waits for re in console output after the previous match and
// returns its submatches.
func (v *vm) expect(re string, timeout time.Duration) ([]string, error) {
	rx := regexp.MustCompile(re)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		v.mu.Lock()
		s := v.out.String()[v.seen:]
		if loc := rx.FindStringSubmatchIndex(s); loc != nil {
			m := rx.FindStringSubmatch(s)
			v.seen += loc[1]
			v.mu.Unlock()
			return m, nil
		}
		v.mu.Unlock()
		select {
		case <-v.change:
		case <-v.done:
			return nil, fmt.Errorf("%s exited before its console showed %q; stderr: %s", v.name, re, v.stderrTail())
		case <-deadline.C:
			return nil, fmt.Errorf("%s: %w after %v waiting for %q", v.name, ErrTimeout, timeout, re)
		}
	}
}

// send types s on the console.
func (v *vm) send(s string) error {
	_, err := v.stdin.WriteString(s)
	return err
}

var runSeq int

// run runs a shell command in the guest and returns its output.
func (v *vm) run(command string, timeout time.Duration) (string, error) {
	runSeq++
	n := runSeq
	if err := v.send(fmt.Sprintf("echo B$((%d+0))E; %s; echo B$((%d+1))E\n", 2*n, command, 2*n)); err != nil {
		return "", err
	}
	if _, err := v.expect(fmt.Sprintf(`B%dE\r?\n`, 2*n), timeout); err != nil {
		return "", err
	}
	m, err := v.expect(fmt.Sprintf(`(?s)^(.*?)B%dE`, 2*n+1), timeout)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(strings.ReplaceAll(m[1], "\r", "")), nil
}

// cpuSeconds is the process's user and system CPU time so far.
func (v *vm) cpuSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", v.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th of the whole line.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat line")
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(ut+st) / 100, nil // USER_HZ
}

// stop kills the process group and waits.
func (v *vm) stop() {
	select {
	case <-v.done:
	default:
		syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
		<-v.done
	}
	v.stdin.Close()
}

func (v *vm) stderrTail() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.stderr.String()
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}
