package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrConsole reports a guest that never printed what was expected.
var ErrConsole = errors.New("guest console")

// vm is one VMM process: its console (stdin to type, output collected)
// and its QMP socket.
type vm struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	out   bytes.Buffer
	done  chan struct{}
	qmp   *qmpClient
}

// startVM runs argv in its own process group, serving QMP on sock.
func startVM(name string, argv []string, sock string) (*vm, error) {
	v := &vm{name: name, done: make(chan struct{})}
	v.cmd = exec.Command(argv[0], argv[1:]...)
	var err error
	if v.stdin, err = v.cmd.StdinPipe(); err != nil {
		return nil, err
	}
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
	if v.qmp, err = dialQMP(sock, v.done); err != nil {
		v.kill()
		return nil, fmt.Errorf("%s: %w:\n%s", name, err, v.tail())
	}
	return v, nil
}

func (v *vm) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.out.Write(p)
}

// mark is the console length: waitFor looks only past a mark.
func (v *vm) mark() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.out.Len()
}

// waitFor waits until the console shows s after mark.
func (v *vm) waitFor(s string, mark int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		v.mu.Lock()
		found := bytes.Contains(v.out.Bytes()[min(mark, v.out.Len()):], []byte(s))
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

// send types s on the console.
func (v *vm) send(s string) error {
	_, err := io.WriteString(v.stdin, s)
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

// qmpEvent is one event with its timestamp.
type qmpEvent struct {
	Name string
	Time time.Time
	Data json.RawMessage
}

// qmpClient is a QMP connection that keeps every event.
type qmpClient struct {
	conn    net.Conn
	replies chan map[string]json.RawMessage
	mu      sync.Mutex
	events  []qmpEvent
}

func dialQMP(sock string, done <-chan struct{}) (*qmpClient, error) {
	var conn net.Conn
	for deadline := time.Now().Add(30 * time.Second); ; {
		var err error
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
		select {
		case <-done:
			return nil, errors.New("exited before its QMP socket appeared")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("QMP socket %s: %w", sock, err)
		}
	}
	q := &qmpClient{conn: conn, replies: make(chan map[string]json.RawMessage, 1)}
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes('\n'); err != nil {
		conn.Close()
		return nil, fmt.Errorf("QMP greeting: %w", err)
	}
	go q.read(r)
	if _, err := q.call("qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmpClient) read(r *bufio.Reader) {
	defer close(q.replies)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		if name, ok := m["event"]; ok {
			var ts struct{ Seconds, Microseconds int64 }
			json.Unmarshal(m["timestamp"], &ts)
			ev := qmpEvent{Time: time.Unix(ts.Seconds, ts.Microseconds*1000), Data: m["data"]}
			json.Unmarshal(name, &ev.Name)
			q.mu.Lock()
			q.events = append(q.events, ev)
			q.mu.Unlock()
			continue
		}
		q.replies <- m
	}
}

// call runs a command and decodes its return value into a map.
func (q *qmpClient) call(cmd string, args map[string]any) (map[string]json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	q.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := json.NewEncoder(q.conn).Encode(req); err != nil {
		return nil, fmt.Errorf("QMP %s: %w", cmd, err)
	}
	select {
	case m, ok := <-q.replies:
		if !ok {
			if cmd == "quit" {
				return nil, nil
			}
			return nil, fmt.Errorf("QMP %s: connection closed", cmd)
		}
		if e, ok := m["error"]; ok {
			return nil, fmt.Errorf("QMP %s: %s", cmd, strings.TrimSpace(string(e)))
		}
		var ret map[string]json.RawMessage
		json.Unmarshal(m["return"], &ret)
		return ret, nil
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("QMP %s: no reply", cmd)
	}
}

// eventCount is the number of events so far.
func (q *qmpClient) eventCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.events)
}

// waitEvent returns the first event named name from index from on.
func (q *qmpClient) waitEvent(name string, from int, timeout time.Duration) (qmpEvent, error) {
	deadline := time.Now().Add(timeout)
	for {
		q.mu.Lock()
		for _, ev := range q.events[min(from, len(q.events)):] {
			if ev.Name == name {
				q.mu.Unlock()
				return ev, nil
			}
		}
		q.mu.Unlock()
		if time.Now().After(deadline) {
			return qmpEvent{}, fmt.Errorf("no %s event within %v", name, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
