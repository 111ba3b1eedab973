package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// ErrConsole reports a guest that never printed what was expected.
var ErrConsole = errors.New("guest console")

// vm is one running VMM process whose console output is collected.
type vm struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

// startVM runs argv in its own process group with stdin idle and stdout
// and stderr collected.
func startVM(name string, argv []string) (*vm, error) {
	v := &vm{name: name, done: make(chan struct{})}
	v.cmd = exec.Command(argv[0], argv[1:]...)
	v.cmd.Stdout = v
	v.cmd.Stderr = v
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	v.cmd.WaitDelay = 2 * time.Second
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

// waitFor waits until the console shows s.
func (v *vm) waitFor(s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		v.mu.Lock()
		found := bytes.Contains(v.out.Bytes(), []byte(s))
		v.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-v.done:
			return fmt.Errorf("%w: %s exited before printing %q:\n%s", ErrConsole, v.name, s, v.tail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s did not print %q within %v:\n%s", ErrConsole, v.name, s, timeout, v.tail())
		}
	}
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

// exists reports whether path names an existing file.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
