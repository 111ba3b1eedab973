package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// vm is one VMM process with the guest's console on its stdio and a QMP
// connection.
type vm struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser

	mu   sync.Mutex
	out  bytes.Buffer
	seen int
	done chan struct{}

	qmp *qmpConn
}

// boot starts args, waits for the guest's shell prompt and connects to
// the QMP socket sock.
func boot(name string, args []string, sock string, timeout time.Duration) (*vm, error) {
	v := &vm{name: name, cmd: exec.Command(args[0], args[1:]...), done: make(chan struct{})}
	var err error
	if v.in, err = v.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	r, w := io.Pipe()
	v.cmd.Stdout, v.cmd.Stderr = w, w
	if err := v.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		v.cmd.Wait()
		w.Close()
	}()
	go func() {
		defer close(v.done)
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			v.mu.Lock()
			v.out.Write(b[:n])
			v.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	if _, err := v.expect(`~ # `, timeout); err != nil {
		v.kill()
		return nil, err
	}
	if v.qmp, err = dialQMP(sock, 30*time.Second); err != nil {
		v.kill()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

// expect waits for re in the output after the last match.
func (v *vm) expect(re string, timeout time.Duration) ([]string, error) {
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
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
		case <-v.done:
			return nil, fmt.Errorf("%s exited before printing %q; output ends %q", v.name, re, tail(s))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: no %q within %v; output ends %q", v.name, re, timeout, tail(s))
		}
	}
}

func tail(s string) string { return s[max(0, len(s)-300):] }

var seq int

// sh runs a guest shell command and returns its output.
func (v *vm) sh(command string, timeout time.Duration) (string, error) {
	seq++
	if _, err := fmt.Fprintf(v.in, "echo M$((%d+0))M; %s; echo M$((%d+1))M\n", 2*seq, command, 2*seq); err != nil {
		return "", err
	}
	if _, err := v.expect(fmt.Sprintf(`M%dM\r?\n`, 2*seq), timeout); err != nil {
		return "", err
	}
	m, err := v.expect(fmt.Sprintf(`(?s)^(.*?)M%dM`, 2*seq+1), timeout)
	if err != nil {
		return "", err
	}
	return m[1], nil
}

// rss is the process's resident memory in bytes.
func (v *vm) rss() (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", v.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0, errors.New("no VmRSS")
	}
	n, err := strconv.ParseUint(string(m[1]), 10, 64)
	return n << 10, err
}

func (v *vm) kill() {
	if v.qmp != nil {
		v.qmp.conn.Close()
	}
	v.cmd.Process.Kill()
	<-v.done
}

// qmpConn is a minimal QMP client: commands in turn, events skipped.
type qmpConn struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialQMP(sock string, timeout time.Duration) (*qmpConn, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			q := &qmpConn{conn: c, r: bufio.NewReader(c)}
			if _, err := q.r.ReadBytes('\n'); err != nil { // greeting
				c.Close()
				return nil, err
			}
			if _, err := q.call("qmp_capabilities", nil); err != nil {
				c.Close()
				return nil, err
			}
			return q, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("QMP socket %s: %w", sock, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call runs a command and returns its "return" member.
func (q *qmpConn) call(cmd string, args map[string]any) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	q.conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
		var r struct {
			Event  string          `json:"event"`
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Desc string `json:"desc"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
		switch {
		case r.Event != "":
			continue
		case r.Error != nil:
			return nil, fmt.Errorf("%s: %s", cmd, r.Error.Desc)
		}
		return r.Return, nil
	}
}

// actual is query-balloon's actual.
func (q *qmpConn) actual() (uint64, error) {
	raw, err := q.call("query-balloon", nil)
	if err != nil {
		return 0, err
	}
	var r struct {
		Actual uint64 `json:"actual"`
	}
	return r.Actual, json.Unmarshal(raw, &r)
}

// balloon sets the guest's memory to target bytes and waits until the
// guest is there; it returns how long that took.
func (q *qmpConn) balloon(target uint64, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	if _, err := q.call("balloon", map[string]any{"value": target}); err != nil {
		return 0, err
	}
	for {
		a, err := q.actual()
		if err != nil {
			return 0, err
		}
		if a == target {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("the guest reached %d MiB, not %d MiB, in %v", a>>20, target>>20, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
