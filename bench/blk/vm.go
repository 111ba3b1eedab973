package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// Errors of driving a VMM.
var (
	ErrConsole = errors.New("guest console")
)

// vm is one running VMM process: its console output is collected and
// commands are typed on its console input.
type vm struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	out   bytes.Buffer
	seen  int // console offset already consumed by waitLine
	done  chan struct{}
}

// startVM runs argv in its own process group.
func startVM(name string, argv []string) (*vm, error) {
	v := &vm{name: name, done: make(chan struct{})}
	v.cmd = exec.Command(argv[0], argv[1:]...)
	v.cmd.Stdout = v
	v.cmd.Stderr = v
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	v.cmd.WaitDelay = 2 * time.Second
	var err error
	if v.stdin, err = v.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := v.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		v.cmd.Wait()
		close(v.done)
	}()
	return v, nil
}

func (v *vm) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.out.Write(p)
}

// pid is the VMM's process id.
func (v *vm) pid() int { return v.cmd.Process.Pid }

// waitLine waits for a console line, after what earlier calls consumed,
// that matches re, and returns its submatches.
func (v *vm) waitLine(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		v.mu.Lock()
		rest := v.out.Bytes()[v.seen:]
		if loc := re.FindSubmatchIndex(rest); loc != nil {
			m := re.FindStringSubmatch(string(rest))
			v.seen += loc[1]
			v.mu.Unlock()
			return m, nil
		}
		v.mu.Unlock()
		select {
		case <-v.done:
			return nil, fmt.Errorf("%w: %s exited waiting for %q:\n%s", ErrConsole, v.name, re, v.tail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s: no %q within %v:\n%s", ErrConsole, v.name, re, timeout, v.tail())
		}
	}
}

// send types a line on the console.
func (v *vm) send(line string) error {
	_, err := io.WriteString(v.stdin, line+"\n")
	return err
}

func (v *vm) tail() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	b := v.out.Bytes()
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// kill ends the process group.
func (v *vm) kill() {
	syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
	<-v.done
}
