package vsock

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// processTX consumes every packet the guest queued. Each chain goes back
// to the guest at once: data that the host socket cannot take yet is
// copied into the connection's buffer, which the credit the guest was
// given bounds.
func (m *muxer) processTX() error {
	q, ch := m.queues[txQueue], m.chains[txQueue]
	for {
		ok, err := q.Next(ch)
		if errors.Is(err, virtio.ErrBadChain) {
			m.stats.badChains++
			m.debug("vsock: dropping a malformed TX chain", "err", err)
		} else if err != nil {
			return err
		} else if !ok {
			return nil
		} else {
			m.guestPacket(ch)
		}
		if err := q.AddUsed(ch.Head(), 0); err != nil {
			return err
		}
	}
}

// guestPacket routes one packet from the guest.
func (m *muxer) guestPacket(ch *virtio.DescriptorChain) {
	if _, err := io.ReadFull(ch, m.hdr[:]); err != nil {
		m.stats.badPackets++
		m.debug("vsock: TX chain shorter than a packet header", "len", ch.ReadableLen())
		return
	}
	var h header
	h.decode(&m.hdr)
	key := connKey{local: h.dstPort, peer: h.srcPort}
	c := m.conns[key]

	switch {
	case h.len > maxPayload || uint64(h.len) > ch.Remaining():
		m.stats.badPackets++
		m.debug("vsock: TX packet length does not fit its chain", "len", h.len, "chain", ch.ReadableLen())
		if c != nil && h.srcCID == m.cid {
			m.kill(c)
		}
		return
	case h.srcCID != m.cid:
		m.stats.badPackets++
		m.debug("vsock: dropping a TX packet with a foreign source CID", "src_cid", h.srcCID)
		return
	case h.dstCID != HostCID:
		m.stats.badPackets++
		m.debug("vsock: dropping a TX packet for a CID other than the host", "dst_cid", h.dstCID)
		return
	case h.typ != typeStream:
		m.stats.badPackets++
		if h.op != opRST {
			m.queueRST(key)
		}
		return
	}

	m.ctr.txPackets.Inc()
	if h.op == opRST {
		m.ctr.resets.Inc()
	}
	if c == nil {
		switch h.op {
		case opRequest:
			m.guestConnect(&h, key)
		case opRST:
		default:
			m.stats.unknownPacket++
			m.queueRST(key)
		}
		return
	}
	if h.op == opRST {
		m.remove(c)
		return
	}
	if c.state == stateClosing {
		return // an RST is on its way
	}
	c.peerBufAlloc, c.peerFwdCnt = h.bufAlloc, h.fwdCnt
	if c.credit() > 0 {
		c.creditAsked = false
	}
	switch h.op {
	case opRW:
		m.guestData(c, ch, h.len)
	case opResponse:
		m.guestAccepted(c)
	case opShutdown:
		m.guestShutdown(c, h.flags)
	case opCreditUpdate:
	case opCreditRequest:
		c.pending |= pendCreditUpdate
	default: // REQUEST on an open connection, or nonsense
		m.stats.badPackets++
		m.debug("vsock: unexpected operation on a connection", "op", opName(h.op), "state", c.state)
		m.kill(c)
	}
	m.schedule(c)
}

// guestConnect opens a guest-initiated connection to the host socket
// PATH_<port>, or refuses it with an RST.
func (m *muxer) guestConnect(h *header, key connKey) {
	if m.full() {
		m.stats.refusedConns++
		m.queueRST(key)
		return
	}
	fd, err := dial(portPath(m.path, h.dstPort))
	if err != nil {
		m.stats.refusedConns++
		m.debug("vsock: refusing a guest connection", "port", h.dstPort, "err", err)
		m.queueRST(key)
		return
	}
	c := &conn{fd: fd, key: key, state: stateRespond, pending: pendResponse,
		peerBufAlloc: h.bufAlloc, peerFwdCnt: h.fwdCnt}
	if err := m.register(c); err != nil {
		m.log.Warn("vsock: watching a host connection", "err", err)
		c.fd = -1
		unix.Close(fd)
		m.queueRST(key)
		return
	}
	m.conns[key] = c
	m.ctr.connsAdded.Inc()
	m.schedule(c)
}

// guestAccepted handles the guest's RESPONSE to a host-initiated request:
// the host program learns its port with "OK <port>\n".
func (m *muxer) guestAccepted(c *conn) {
	if c.state != stateRequest {
		m.stats.badPackets++
		m.kill(c)
		return
	}
	c.state = stateEstablished
	c.expiry = time.Time{}
	line := strconv.AppendUint(append(m.line[:0], "OK "...), uint64(c.key.local), 10)
	line = append(line, '\n')
	if n, err := writeFD(c.fd, line); err != nil || n != len(line) {
		m.kill(c)
	}
}

// guestData forwards a data packet's payload to the host socket.
func (m *muxer) guestData(c *conn, ch *virtio.DescriptorChain, n uint32) {
	if c.state != stateEstablished || c.peerShut&shutdownSend != 0 {
		m.stats.badPackets++
		m.kill(c)
		return
	}
	if n == 0 {
		return
	}
	if uint64(c.buffered())+uint64(n) > bufAlloc {
		m.stats.creditAbuse++
		m.debug("vsock: guest sent beyond its credit", "local_port", c.key.local, "peer_port", c.key.peer, "len", n)
		m.kill(c)
		return
	}
	c.fromGuest += n
	m.ctr.txBytes.Add(uint64(n))
	if c.buf.len() > 0 {
		if err := c.buf.readFrom(&m.pool, ch, int(n)); err != nil {
			m.kill(c)
		}
		return
	}
	b := m.scratch[:n]
	if _, err := io.ReadFull(ch, b); err != nil {
		m.kill(c)
		return
	}
	k, err := writeFD(c.fd, b)
	c.fwdCnt += uint32(k)
	if err != nil {
		m.debug("vsock: writing to a host connection", "local_port", c.key.local, "peer_port", c.key.peer, "err", err)
		m.kill(c)
		return
	}
	if k < len(b) {
		c.buf.write(&m.pool, b[k:])
		m.armOut(c)
	}
	m.forwarded(c)
}

// guestShutdown records the guest's promise to stop receiving, sending or
// both, and ends the connection once nothing is left to deliver.
func (m *muxer) guestShutdown(c *conn, flags uint32) {
	if c.state != stateEstablished {
		m.kill(c)
		return
	}
	c.peerShut |= flags & shutdownBoth
	if c.peerShut&shutdownSend == 0 {
		return
	}
	if c.buf.len() > 0 {
		if c.peerShut&shutdownRcv != 0 || c.eof {
			// The connection ends once the host program has read the
			// rest; give it a while.
			m.setExpiry(c, closeTimeout)
		}
		return
	}
	m.forwarded(c)
}

// queueRST owes the guest an RST for a packet that matches no connection.
func (m *muxer) queueRST(key connKey) {
	if m.rstLen == rstQueueLen {
		m.stats.rstsDropped++
		return
	}
	m.rsts[(m.rstHead+m.rstLen)%rstQueueLen] = key
	m.rstLen++
}

// debug logs at debug level. It is only called for unusual events (bad
// packets, refused connections), never per packet of a healthy stream.
func (m *muxer) debug(msg string, args ...any) {
	if m.log.Enabled(context.Background(), slog.LevelDebug) {
		m.log.Debug(msg, args...)
	}
}
