package vsock

import (
	"bytes"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Events watched on a connection's host socket (edge-triggered: the
// muxer remembers readiness in the conn until a call returns EAGAIN).
const (
	connEvents    = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET
	connEventsOut = connEvents | unix.EPOLLOUT
)

// maxConnectLine is the longest "CONNECT <port>\n" line accepted.
const maxConnectLine = 32

// acceptAll accepts every pending host connection; each starts in the
// handshake state, waiting for its CONNECT line.
func (m *muxer) acceptAll() {
	for {
		fd, err := m.lis.accept()
		if err != nil {
			m.log.Warn("vsock: accepting a host connection", "err", err)
			return
		}
		if fd < 0 {
			return
		}
		if m.full() {
			m.stats.refusedConns++
			unix.Close(fd)
			continue
		}
		c := &conn{fd: fd, state: stateHandshake}
		if err := m.register(c); err != nil {
			m.log.Warn("vsock: watching a host connection", "err", err)
			unix.Close(fd)
			continue
		}
		m.handshakes++
	}
}

// register gives c a token and watches its socket.
func (m *muxer) register(c *conn) error {
	c.token = m.nextToken
	m.nextToken++
	if err := m.watch(c.fd, c.token, connEvents); err != nil {
		return err
	}
	m.byToken[c.token] = c
	return nil
}

// hostEvent records readiness of a connection's host socket and acts on it.
func (m *muxer) hostEvent(c *conn, events uint32) {
	if c.state == stateHandshake {
		m.handshake(c)
		return
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.readable = true
	}
	if events&unix.EPOLLHUP != 0 {
		c.hup = true
		if c.state == stateRequest {
			// The host program gave up before the guest answered.
			m.kill(c)
			return
		}
	}
	if events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 && c.buf.len() > 0 {
		m.flush(c)
	}
	m.schedule(c)
}

// handshake reads the host's "CONNECT <port>\n" line without consuming
// anything after it, then asks the guest for the connection.
func (m *muxer) handshake(c *conn) {
	var n int
	var err error
	for {
		n, _, err = unix.Recvfrom(c.fd, m.line[:], unix.MSG_PEEK)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.EAGAIN {
		return
	}
	if err != nil || n == 0 {
		m.remove(c) // the host program left
		return
	}
	end := bytes.IndexByte(m.line[:n], '\n')
	if end < 0 {
		if n >= maxConnectLine {
			m.log.Debug("vsock: host connection sent no CONNECT line")
			m.remove(c)
		}
		return // wait for the rest of the line
	}
	if k, err := readFD(c.fd, m.line[:end+1]); err != nil || k != end+1 {
		m.remove(c)
		return
	}
	port, ok := parseConnect(m.line[:end])
	if !ok {
		m.log.Debug("vsock: bad CONNECT line from a host connection", "line", string(m.line[:end]))
		m.remove(c)
		return
	}
	m.handshakes--
	c.key = connKey{local: m.allocLocalPort(), peer: port}
	c.state = stateRequest
	c.pending = pendRequest
	c.readable = true // bytes after the line may be waiting
	m.conns[c.key] = c
	m.ctr.connsAdded.Inc()
	m.localPorts[c.key.local] = c
	m.schedule(c)
}

// parseConnect parses "CONNECT <port>" (the keyword in any case, the
// newline already stripped, surrounding spaces ignored).
func parseConnect(line []byte) (uint32, bool) {
	f := bytes.Fields(line)
	if len(f) != 2 || !bytes.EqualFold(f[0], []byte("connect")) {
		return 0, false
	}
	p, err := strconv.ParseUint(string(f[1]), 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(p), true
}

// allocLocalPort picks the host-side port of a host-initiated connection,
// round robin in [2^30, 2^31) as Firecracker does (from a random start).
func (m *muxer) allocLocalPort() uint32 {
	for {
		m.lastLocal = (m.lastLocal+1)&^(1<<31) | 1<<30
		if m.localPorts[m.lastLocal] == nil {
			return m.lastLocal
		}
	}
}

// flush writes buffered guest data to the host socket.
func (m *muxer) flush(c *conn) {
	n, err := c.buf.flush(&m.pool, c.fd)
	c.fwdCnt += uint32(n)
	if err != nil {
		m.log.Debug("vsock: writing to a host connection", "local_port", c.key.local, "peer_port", c.key.peer, "err", err)
		m.kill(c)
		return
	}
	m.armOut(c)
	m.forwarded(c)
}

// armOut watches for writability exactly while data is buffered.
func (m *muxer) armOut(c *conn) {
	want := c.buf.len() > 0
	if want == c.outArmed || c.fd < 0 {
		return
	}
	ev := uint32(connEvents)
	if want {
		ev = connEventsOut
	}
	if err := m.rewatch(c.fd, c.token, ev); err != nil {
		m.log.Warn("vsock: watching a host connection", "err", err)
		m.kill(c)
		return
	}
	c.outArmed = want
}

// forwarded runs after guest data reached the host socket: it ends the
// host direction or the connection once the guest has finished sending
// and everything is written, and schedules a credit update.
func (m *muxer) forwarded(c *conn) {
	if c.state == stateClosing {
		return
	}
	if c.buf.len() == 0 && c.peerShut&shutdownSend != 0 {
		if !c.wrShut {
			c.wrShut = true
			unix.Shutdown(c.fd, unix.SHUT_WR)
		}
		if c.peerShut&shutdownRcv != 0 || c.eof {
			m.finish(c)
			return
		}
	}
	if c.guestNeedsCredit() {
		c.pending |= pendCreditUpdate
	}
}

// hostEOF handles the end of the host program's stream.
func (m *muxer) hostEOF(c *conn) {
	c.eof = true
	if c.peerShut&shutdownSend != 0 && c.buf.len() == 0 {
		m.finish(c) // both directions are done
		return
	}
	c.shutFlags |= shutdownSend
	if c.hup {
		// The host program closed its socket: it will not read either.
		c.shutFlags |= shutdownRcv
		m.setExpiry(c, closeTimeout)
	}
	c.pending |= pendShutdown
}

// finish ends a connection whose data has all been delivered: the host
// socket is closed and an RST tells the guest.
func (m *muxer) finish(c *conn) { m.kill(c) }

// kill resets a connection: buffered data is dropped, the host socket
// closed, and an RST is due to the guest (a connection still in its
// handshake has no guest side and just goes).
func (m *muxer) kill(c *conn) {
	if c.state == stateHandshake {
		m.remove(c)
		return
	}
	m.closeHost(c)
	c.buf.reset(&m.pool)
	c.state = stateClosing
	c.pending = pendRST
	c.expiry = time.Time{}
	m.schedule(c)
}

// closeHost closes the host socket; the connection stays in the table.
func (m *muxer) closeHost(c *conn) {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
		delete(m.byToken, c.token)
	}
}

// remove takes a connection out of the table and closes its socket.
func (m *muxer) remove(c *conn) {
	if c.removed {
		return
	}
	m.closeHost(c)
	c.buf.reset(&m.pool)
	c.removed = true
	if c.state == stateHandshake {
		m.handshakes--
	} else {
		if m.conns[c.key] == c {
			delete(m.conns, c.key)
			m.ctr.connsRemoved.Inc()
		}
		if m.localPorts[c.key.local] == c {
			delete(m.localPorts, c.key.local)
		}
	}
}

// full reports whether the connection table is at its limit.
func (m *muxer) full() bool { return len(m.conns)+m.handshakes >= maxConns }

// schedule puts c in the ready ring if it has something for the guest.
func (m *muxer) schedule(c *conn) {
	if !c.queued && c.wantsRx() {
		c.queued = true
		m.ready.push(c)
	}
}
