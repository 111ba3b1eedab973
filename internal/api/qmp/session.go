package qmp

import (
	"bufio"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// session is one client connection. Its reader goroutine parses and runs
// commands one at a time; its writer goroutine sends the greeting,
// replies and events in order from one bounded queue.
type session struct {
	srv      *Server
	conn     net.Conn
	debugLog func(msg string, args ...any) // per-client debug log

	out        chan outMsg   // messages waiting for the writer
	killCh     chan struct{} // closed to disconnect at once
	killOnce   sync.Once
	readerDone chan struct{} // closed when the reader has stopped
	done       chan struct{} // closed when both goroutines have stopped

	// negotiated is set just before the reply that ends capabilities
	// negotiation is queued; from then on events are queued too. The
	// writer drops events queued ahead of that reply, so the client sees
	// none before it and every one after it.
	negotiated atomic.Bool
	oob        bool // the client enabled the oob capability (reader only)
}

// outMsg is one queued message.
type outMsg struct {
	data  []byte
	event bool // an event: sent only once negotiation is over
	ready bool // the reply that ends negotiation
}

func newSession(s *Server, c net.Conn) *session {
	return &session{
		srv:        s,
		conn:       c,
		debugLog:   s.opts.Log.With("client", c.RemoteAddr().String()).Debug,
		out:        make(chan outMsg, s.opts.QueueLen),
		killCh:     make(chan struct{}),
		readerDone: make(chan struct{}),
		done:       make(chan struct{}),
	}
}

// run serves the client until it disconnects or is disconnected.
func (ss *session) run() {
	defer close(ss.done)
	ss.out <- outMsg{data: ss.srv.hello}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		ss.write()
	}()
	ss.read()
	close(ss.readerDone)
	<-writerDone
}

// read parses and runs commands until the input ends or fails.
func (ss *session) read() {
	fr := newFramer(ss.conn, ss.srv.opts.MaxMessage)
	for {
		msg, perr, err := fr.next()
		if err != nil {
			ss.debugLog("qmp: client input ended", "err", err)
			return
		}
		var reply outMsg
		if perr != nil {
			reply.data = encodeError(perr, nil)
		} else {
			reply.data, reply.ready = ss.dispatch(msg)
		}
		if reply.ready {
			ss.negotiated.Store(true)
		}
		if !ss.send(reply) {
			return
		}
	}
}

// write sends queued messages, batching whatever is waiting into one
// write, until the reader stops (then it flushes the rest) or the session
// is killed.
func (ss *session) write() {
	defer ss.conn.Close()
	w := bufio.NewWriter(ss.conn)
	ready := false
	put := func(m outMsg) {
		if m.event && !ready {
			return // queued before the negotiation reply
		}
		ready = ready || m.ready
		w.Write(m.data)
	}
	flush := func(first outMsg) bool {
		put(first)
		for len(ss.out) > 0 {
			put(<-ss.out)
		}
		if err := w.Flush(); err != nil {
			ss.debugLog("qmp: cannot write to client", "err", err)
			ss.kill("write failed")
			return false
		}
		return true
	}
	for {
		select {
		case msg := <-ss.out:
			if !flush(msg) {
				return
			}
		case <-ss.readerDone:
			select {
			case msg := <-ss.out:
				flush(msg)
			default:
			}
			return
		case <-ss.killCh:
			return
		}
	}
}

// send queues a reply, waiting while the queue is full; false means the
// session was killed.
func (ss *session) send(msg outMsg) bool {
	select {
	case ss.out <- msg:
		return true
	case <-ss.killCh:
		return false
	}
}

// event queues an event for a negotiated client without waiting: a client
// too slow to take it is disconnected, so it can hold up nobody.
func (ss *session) event(msg []byte) {
	if !ss.negotiated.Load() {
		return
	}
	select {
	case ss.out <- outMsg{data: msg, event: true}:
	case <-ss.killCh:
	default:
		ss.srv.opts.Log.Warn("qmp: disconnecting a client that does not read", "client", ss.conn.RemoteAddr().String(), "waiting", cap(ss.out))
		ss.kill("event queue full")
	}
}

// kill disconnects the client at once.
func (ss *session) kill(why string) {
	ss.killOnce.Do(func() {
		ss.debugLog("qmp: disconnecting client", "reason", why)
		close(ss.killCh)
		ss.conn.Close()
	})
}

// stopReading makes the reader stop at its next read; a command in
// progress finishes and its reply is still sent.
func (ss *session) stopReading() {
	if err := ss.conn.SetReadDeadline(time.Now()); err != nil {
		// The connection is already closed, or cannot be interrupted.
		ss.kill("cannot stop reading")
	}
}

// dispatch runs one message and returns the reply; negotiatedNow reports
// a successful capabilities negotiation.
func (ss *session) dispatch(msg []byte) (reply []byte, negotiatedNow bool) {
	req, perr := parseRequest(msg, ss.oob)
	if perr != nil {
		return encodeError(perr, req.id), false
	}
	if !ss.negotiated.Load() {
		return ss.negotiate(req)
	}
	cmd, ok := ss.srv.cmds[req.execute]
	if !ok {
		return encodeError(NewError(ClassCommandNotFound, "The command %s has not been found", req.execute), req.id), false
	}
	if req.oob {
		return encodeError(genericf("The command %s does not support OOB", req.execute), req.id), false
	}
	a, perr := bindArgs(cmd.params, req.args)
	if perr != nil {
		return encodeError(perr, req.id), false
	}
	ret, err := ss.call(req.execute, cmd, a)
	if err != nil {
		return encodeError(toError(err), req.id), false
	}
	return encodeReturn(ret, req.id), false
}

// negotiate handles a message in capabilities negotiation mode, where
// qmp_capabilities is the only command.
func (ss *session) negotiate(req request) ([]byte, bool) {
	if req.execute != "qmp_capabilities" {
		return encodeError(NewError(ClassCommandNotFound, "Expecting capabilities negotiation with 'qmp_capabilities'"), req.id), false
	}
	a, perr := bindArgs(capabilitiesParams, req.args)
	if perr != nil {
		return encodeError(perr, req.id), false
	}
	enable, _ := a.list("enable")
	ss.oob = contains(enable, "oob")
	return encodeReturn(empty{}, req.id), true
}

// call runs a handler. A panic in a handler is a VMM bug, not the client's
// doing: it fails this command and is logged, and the VMM carries on.
func (ss *session) call(name string, cmd command, a args) (ret any, err error) {
	defer func() {
		if r := recover(); r != nil {
			ss.srv.opts.Log.Error("qmp: command handler panicked", "command", name, "panic", r, "stack", string(debug.Stack()))
			ret, err = nil, genericf("internal error in %s", name)
		}
	}()
	return cmd.run(a)
}
