package qmp

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Defaults for Options.
const (
	DefaultQueueLen     = 256
	DefaultMaxClients   = 256
	DefaultDrainTimeout = 2 * time.Second
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Package is the version's package string, e.g. "vireo-0.1.0".
	Package string
	// Name and UUID are what query-name and query-uuid report; an empty
	// UUID reads as all zeros, as in QEMU.
	Name, UUID string
	// MaxMessage caps one input message in bytes (DefaultMaxMessage).
	MaxMessage int
	// QueueLen is how many replies and events may wait for a client that
	// does not read; an event that finds the queue full disconnects it
	// (DefaultQueueLen).
	QueueLen int
	// MaxClients caps simultaneous connections; more are refused
	// (DefaultMaxClients).
	MaxClients int
	// DrainTimeout bounds how long Close waits for replies to be sent
	// (DefaultDrainTimeout).
	DrainTimeout time.Duration
	// Log receives connection-level messages (slog.Default when nil).
	Log *slog.Logger
}

func (o *Options) setDefaults() {
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	if o.QueueLen <= 0 {
		o.QueueLen = DefaultQueueLen
	}
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// Server serves QMP to any number of clients over any number of
// listeners. Each client has its own goroutines; events reach every
// client that has negotiated capabilities, through a bounded queue.
type Server struct {
	m       Machine
	opts    Options
	version VersionInfo
	cmds    map[string]command
	hello   []byte
	unsub   func()

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	wg        sync.WaitGroup // running sessions and accept loops
}

// NewServer returns a server for m and subscribes to its events.
func NewServer(m Machine, opts Options) *Server {
	opts.setDefaults()
	s := &Server{
		m:         m,
		opts:      opts,
		version:   VersionInfo{QEMU: CompatVersion, Package: opts.Package},
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*session]struct{}),
	}
	s.cmds = newCommands(s)
	s.hello = encode(greeting{QMP: greetingBody{Version: s.version, Capabilities: []string{"oob"}}}, nil)
	s.unsub = m.Subscribe(s.broadcast)
	return s
}

func (s *Server) uuid() string {
	if s.opts.UUID == "" {
		return zeroUUID
	}
	return s.opts.UUID
}

// Serve accepts clients on l until Close; it returns ErrServerClosed
// then, or the listener's error.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				// Out of descriptors, or a client gone before accept:
				// back off and retry.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		go s.ServeConn(c)
	}
}

// ServeConn serves one client on c and returns when it has gone.
func (s *Server) ServeConn(c net.Conn) {
	ss := newSession(s, c)
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		c.Close()
		return
	case len(s.sessions) >= s.opts.MaxClients:
		s.mu.Unlock()
		s.opts.Log.Warn("qmp: too many clients; refusing a connection", "limit", s.opts.MaxClients)
		c.Close()
		return
	}
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	ss.run()
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
}

// broadcast queues an event for every negotiated client. It runs on the
// VMM's event path and never blocks.
func (s *Server) broadcast(ev Event) {
	msg := encodeEvent(ev)
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss := range s.sessions {
		ss.event(msg)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops accepting clients, lets every client's command in progress
// finish and its replies and events be written (for up to DrainTimeout),
// then disconnects everyone. It returns once every session has ended, or
// after a second DrainTimeout if a Machine call is still running.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var errs []error
	for l := range s.listeners {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	sessions := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()

	for _, ss := range sessions {
		ss.stopReading()
	}
	deadline := time.NewTimer(s.opts.DrainTimeout)
	defer deadline.Stop()
wait:
	for _, ss := range sessions {
		select {
		case <-ss.done:
		case <-deadline.C:
			for _, ss := range sessions {
				ss.kill("server closing")
			}
			break wait
		}
	}
	s.unsub()
	// A session whose command is still inside the Machine ends when that
	// call returns; do not hold the caller (a VMM on its way out) for it.
	all := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(all)
	}()
	select {
	case <-all:
	case <-time.After(s.opts.DrainTimeout):
		s.opts.Log.Warn("qmp: a command is still running at close; not waiting for it")
	}
	return errors.Join(errs...)
}
