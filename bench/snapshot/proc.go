package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// ErrConsole reports a guest that never printed what was expected.
var ErrConsole = errors.New("guest console")

// proc is one VMM process: its console (stdout) is collected, with the
// time the first byte arrived, and its stderr lines are timestamped.
type proc struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	started time.Time // just before exec

	mu        sync.Mutex
	out       bytes.Buffer
	firstByte time.Time
	lines     []stampedLine
	change    chan struct{}
	done      chan struct{}
}

type stampedLine struct {
	at   time.Time
	text string
}

// startProc runs argv in its own process group with a stdin pipe.
func startProc(name string, argv []string) (*proc, error) {
	p := &proc{name: name, change: make(chan struct{}, 1), done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout = consoleWriter{p}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.cmd.WaitDelay = 2 * time.Second
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			now := time.Now()
			p.mu.Lock()
			p.lines = append(p.lines, stampedLine{now, s.Text()})
			p.mu.Unlock()
			p.notify()
		}
	}()
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

type consoleWriter struct{ p *proc }

func (w consoleWriter) Write(b []byte) (int, error) {
	now := time.Now()
	w.p.mu.Lock()
	if w.p.firstByte.IsZero() && len(b) > 0 {
		w.p.firstByte = now
	}
	w.p.out.Write(b)
	w.p.mu.Unlock()
	w.p.notify()
	return len(b), nil
}

func (p *proc) notify() {
	select {
	case p.change <- struct{}{}:
	default:
	}
}

// waitFor waits until cond, evaluated under the lock, holds.
func (p *proc) waitFor(what string, timeout time.Duration, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		ok := cond()
		p.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-p.change:
		case <-p.done:
			p.mu.Lock()
			ok := cond()
			p.mu.Unlock()
			if ok {
				return nil
			}
			return fmt.Errorf("%w: %s exited before %s:\n%s", ErrConsole, p.name, what, p.tail())
		case <-deadline.C:
			return fmt.Errorf("%w: %s: no %s within %v:\n%s", ErrConsole, p.name, what, timeout, p.tail())
		}
	}
}

// waitOutput waits until the console shows s after offset from.
func (p *proc) waitOutput(s string, from int, timeout time.Duration) error {
	return p.waitFor(fmt.Sprintf("%q on the console", s), timeout, func() bool {
		return from <= p.out.Len() && bytes.Contains(p.out.Bytes()[from:], []byte(s))
	})
}

// outLen is the console output's length so far.
func (p *proc) outLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Len()
}

// send types s on the console.
func (p *proc) send(s string) error {
	_, err := io.WriteString(p.stdin, s)
	return err
}

// stderrLine returns the first stderr line containing s, once it came.
func (p *proc) stderrLine(s string, timeout time.Duration) (stampedLine, error) {
	var found stampedLine
	err := p.waitFor(fmt.Sprintf("%q on stderr", s), timeout, func() bool {
		for _, l := range p.lines {
			if bytes.Contains([]byte(l.text), []byte(s)) {
				found = l
				return true
			}
		}
		return false
	})
	return found, err
}

// firstOutput is how long after exec the console's first byte came.
func (p *proc) firstOutput(timeout time.Duration) (time.Duration, error) {
	if err := p.waitFor("console output", timeout, func() bool { return !p.firstByte.IsZero() }); err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstByte.Sub(p.started), nil
}

func (p *proc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.out.Bytes()
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	var errs bytes.Buffer
	for _, l := range p.lines[max(0, len(p.lines)-10):] {
		errs.WriteString(l.text + "\n")
	}
	return string(b) + "\nstderr:\n" + errs.String()
}

// kill ends the process group and waits for it.
func (p *proc) kill() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}
