package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// ErrQMP reports a QMP failure.
var ErrQMP = errors.New("qmp")

// qmpEvent is an asynchronous QMP event with the time it was read.
type qmpEvent struct {
	Name string
	Data json.RawMessage
	At   time.Time
	// Stamp is the event's own timestamp (the VMM's clock).
	Stamp time.Time
}

// qmpConn is a QMP session: one command at a time; events are kept.
type qmpConn struct {
	conn    net.Conn
	replies chan qmpReply

	mu     sync.Mutex
	events []qmpEvent
}

type qmpReply struct {
	ret json.RawMessage
	err error
}

// dialQMP connects to a QMP Unix socket (retrying until timeout while
// the VMM starts) and negotiates capabilities.
func dialQMP(path string, timeout time.Duration) (*qmpConn, error) {
	deadline := time.Now().Add(timeout)
	var conn net.Conn
	for {
		var err error
		if conn, err = net.Dial("unix", path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: connecting to %s: %v", ErrQMP, path, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	q := &qmpConn{conn: conn, replies: make(chan qmpReply, 1)}
	greeted := make(chan error, 1)
	go q.read(greeted)
	select {
	case err := <-greeted:
		if err != nil {
			conn.Close()
			return nil, err
		}
	case <-time.After(timeout):
		conn.Close()
		return nil, fmt.Errorf("%w: no greeting on %s", ErrQMP, path)
	}
	if _, err := q.call("qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

// read dispatches replies and records events until the connection ends.
func (q *qmpConn) read(greeted chan<- error) {
	dec := json.NewDecoder(bufio.NewReader(q.conn))
	first := true
	for {
		var msg struct {
			QMP       json.RawMessage `json:"QMP"`
			Return    json.RawMessage `json:"return"`
			Error     *struct{ Class, Desc string }
			Event     string          `json:"event"`
			Data      json.RawMessage `json:"data"`
			Timestamp *struct {
				Seconds      int64 `json:"seconds"`
				Microseconds int64 `json:"microseconds"`
			} `json:"timestamp"`
		}
		err := dec.Decode(&msg)
		now := time.Now()
		if first {
			first = false
			if err == nil && msg.QMP == nil {
				err = fmt.Errorf("%w: no QMP greeting", ErrQMP)
			}
			greeted <- err
			if err != nil {
				return
			}
			continue
		}
		if err != nil {
			select {
			case q.replies <- qmpReply{err: fmt.Errorf("%w: %v", ErrQMP, err)}:
			default:
			}
			return
		}
		switch {
		case msg.Event != "":
			ev := qmpEvent{Name: msg.Event, Data: msg.Data, At: now}
			if msg.Timestamp != nil {
				ev.Stamp = time.Unix(msg.Timestamp.Seconds, msg.Timestamp.Microseconds*1000)
			}
			q.mu.Lock()
			q.events = append(q.events, ev)
			q.mu.Unlock()
		case msg.Error != nil:
			q.replies <- qmpReply{err: fmt.Errorf("%w: %s: %s", ErrQMP, msg.Error.Class, msg.Error.Desc)}
		default:
			q.replies <- qmpReply{ret: msg.Return}
		}
	}
}

// call runs one command and returns its result.
func (q *qmpConn) call(cmd string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	q.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrQMP, cmd, err)
	}
	select {
	case r := <-q.replies:
		if r.err != nil {
			return nil, fmt.Errorf("%s: %w", cmd, r.err)
		}
		return r.ret, nil
	case <-time.After(5 * time.Minute):
		return nil, fmt.Errorf("%w: %s: no reply", ErrQMP, cmd)
	}
}

// event returns the first recorded event named name, if any.
func (q *qmpConn) event(name string) (qmpEvent, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.events {
		if e.Name == name {
			return e, true
		}
	}
	return qmpEvent{}, false
}

func (q *qmpConn) close() { q.conn.Close() }

// allocated is the disk space a file (or a directory's files) takes.
func allocated(paths ...string) int64 {
	var n int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st.IsDir() {
			entries, _ := os.ReadDir(p)
			for _, e := range entries {
				n += allocated(p + "/" + e.Name())
			}
			continue
		}
		n += blocks(p)
	}
	return n
}
