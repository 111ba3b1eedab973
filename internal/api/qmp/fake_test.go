package qmp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeMachine is a Machine without KVM. Like the VMM's controller it
// emits events synchronously, before the action returns.
type fakeMachine struct {
	mu      sync.Mutex
	state   RunState
	calls   map[string]int
	cpus    []CPU
	blocks  []BlockDevice
	balloon uint64 // 0: no balloon device
	subs    map[int]func(Event)
	nextSub int
	// block, when set, is waited on inside Pause (a slow machine).
	block chan struct{}
	// entered is signalled when Pause starts.
	entered chan struct{}
}

func newFakeMachine() *fakeMachine {
	return &fakeMachine{
		state: StateRunning,
		calls: map[string]int{},
		cpus:  []CPU{{Index: 0, ThreadID: 1000, Core: 0}, {Index: 1, ThreadID: 1001, Core: 1}},
		subs:  map[int]func(Event){},
	}
}

func (f *fakeMachine) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

func (f *fakeMachine) record(name string) {
	f.mu.Lock()
	f.calls[name]++
	f.mu.Unlock()
}

// emit delivers an event to every subscriber, as the controller does.
func (f *fakeMachine) emit(name string, data any) {
	f.mu.Lock()
	subs := make([]func(Event), 0, len(f.subs))
	for _, fn := range f.subs {
		subs = append(subs, fn)
	}
	f.mu.Unlock()
	for _, fn := range subs {
		fn(Event{Name: name, Time: time.Now(), Data: data})
	}
}

func (f *fakeMachine) setState(from, to RunState) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state != from {
		return false
	}
	f.state = to
	return true
}

func (f *fakeMachine) Status() RunState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *fakeMachine) Pause() error {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.block != nil {
		<-f.block
	}
	f.record("pause")
	if f.setState(StateRunning, StatePaused) {
		f.emit("STOP", nil)
	}
	return nil
}

func (f *fakeMachine) Resume() error {
	f.record("resume")
	if f.setState(StatePaused, StateRunning) {
		f.emit("RESUME", nil)
	}
	return nil
}

func (f *fakeMachine) Reset() error {
	f.record("reset")
	f.emit("RESET", ShutdownData{Guest: false, Reason: "host-qmp-system-reset"})
	return nil
}

func (f *fakeMachine) Powerdown() error {
	f.record("powerdown")
	f.emit("POWERDOWN", nil)
	return nil
}

func (f *fakeMachine) Snapshot(dir string) error {
	f.record("snapshot " + dir)
	return nil
}

func (f *fakeMachine) Quit() error {
	f.record("quit")
	f.emit("SHUTDOWN", ShutdownData{Guest: false, Reason: "host-qmp-quit"})
	f.mu.Lock()
	f.state = StateShutdown
	f.mu.Unlock()
	return nil
}

func (f *fakeMachine) CPUs() []CPU           { return f.cpus }
func (f *fakeMachine) MemorySize() uint64    { return 128 << 20 }
func (f *fakeMachine) Blocks() []BlockDevice { return f.blocks }

func (f *fakeMachine) Balloon() (uint64, error) {
	if f.balloon == 0 {
		return 0, ErrNoBalloon
	}
	return f.balloon, nil
}

func (f *fakeMachine) SetBalloon(target uint64) error {
	if f.balloon == 0 {
		return ErrNoBalloon
	}
	f.balloon = target
	return nil
}

func (f *fakeMachine) Subscribe(fn func(Event)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextSub
	f.nextSub++
	f.subs[id] = fn
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, id)
	}
}

// newTestServer returns a server on a fake machine, closed at cleanup.
func newTestServer(t testing.TB, opts Options) (*Server, *fakeMachine) {
	t.Helper()
	m := newFakeMachine()
	if opts.Package == "" {
		opts.Package = "vireo-test"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := NewServer(m, opts)
	t.Cleanup(func() { s.Close() })
	return s, m
}

// client is a test QMP client on one end of a connection.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// connect attaches a client to s through an in-memory pipe and reads the
// greeting.
func connect(t testing.TB, s *Server) *client {
	t.Helper()
	a, b := net.Pipe()
	go s.ServeConn(b)
	c := &client{t: t, conn: a, r: bufio.NewReader(a)}
	t.Cleanup(func() { a.Close() })
	c.line() // greeting
	return c
}

// negotiated connects and negotiates capabilities.
func negotiated(t testing.TB, s *Server) *client {
	t.Helper()
	c := connect(t, s)
	if got := c.do(`{"execute":"qmp_capabilities"}`); got != `{"return": {}}` {
		t.Fatalf("qmp_capabilities: %s", got)
	}
	return c
}

func (c *client) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// line reads one message, checks its CRLF end and returns it without.
func (c *client) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a reply: %v (got %q)", err, s)
	}
	if !strings.HasSuffix(s, "\r\n") {
		c.t.Fatalf("message not ended by CRLF: %q", s)
	}
	s = strings.TrimSuffix(s, "\r\n")
	if !json.Valid([]byte(s)) {
		c.t.Fatalf("message is not JSON: %q", s)
	}
	return s
}

// do sends a command and returns the next message that is not an event.
func (c *client) do(cmd string) string {
	c.t.Helper()
	c.send(cmd)
	for {
		l := c.line()
		if !strings.HasPrefix(l, `{"timestamp"`) {
			return l
		}
	}
}

// decode parses a message into a generic map.
func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return m
}

// streamConn is a net.Conn that reads a fixed input and records what is
// written: a whole session runs to completion without a peer.
type streamConn struct {
	in  io.Reader
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *streamConn) Read(p []byte) (int, error) { return c.in.Read(p) }
func (c *streamConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}
func (c *streamConn) Close() error                     { return nil }
func (c *streamConn) LocalAddr() net.Addr              { return fakeAddr{} }
func (c *streamConn) RemoteAddr() net.Addr             { return fakeAddr{} }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

type fakeAddr struct{}

func (fakeAddr) Network() string { return "test" }
func (fakeAddr) String() string  { return "test" }

// runSession feeds input to a fresh session and returns its output.
func runSession(s *Server, input []byte) []byte {
	c := &streamConn{in: bytes.NewReader(input)}
	s.ServeConn(c)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Bytes()
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

type jsonNumber = json.Number
