package vsock

import (
	"encoding/binary"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// processRX fills the guest's receive buffers with what is owed: RSTs for
// stray packets first, then the ready connections in turn, one packet
// each per round.
func (m *muxer) processRX() error {
	q, ch := m.queues[rxQueue], m.chains[rxQueue]
	for m.rstLen > 0 || m.ready.len() > 0 {
		ok, err := q.Next(ch)
		if errors.Is(err, virtio.ErrBadChain) {
			m.stats.badChains++
			if err := q.AddUsed(ch.Head(), 0); err != nil {
				return err
			}
			continue
		}
		if err != nil || !ok {
			return err // no buffer: Next asked the driver for a notification
		}
		if ch.WritableLen() <= hdrSize {
			// Too small for a header and any data: Linux posts ~4 KiB.
			m.stats.badChains++
			if err := q.AddUsed(ch.Head(), 0); err != nil {
				return err
			}
			continue
		}
		filled, err := m.fillRX(ch)
		if err != nil {
			return err
		}
		if !filled {
			q.UndoPop()
			continue
		}
		if err := q.AddUsed(ch.Head(), ch.Written()); err != nil {
			return err
		}
	}
	return nil
}

// fillRX writes the next packet owed to the guest into ch. It reports
// false when, after all, nobody had anything to say.
func (m *muxer) fillRX(ch *virtio.DescriptorChain) (bool, error) {
	if m.rstLen > 0 {
		key := m.rsts[m.rstHead]
		m.rstHead = (m.rstHead + 1) % rstQueueLen
		m.rstLen--
		h := header{srcCID: HostCID, dstCID: m.cid, srcPort: key.local, dstPort: key.peer, typ: typeStream, op: opRST}
		return true, m.emit(ch, &h, nil)
	}
	for m.ready.len() > 0 {
		c := m.ready.pop()
		c.queued = false
		if c.removed {
			continue
		}
		filled, err := m.connPacket(c, ch)
		m.schedule(c) // to the back of the ring if it has more to say
		if filled || err != nil {
			return filled, err
		}
	}
	return false, nil
}

// connPacket writes the packet c owes the guest, by precedence: RST,
// RESPONSE, REQUEST, SHUTDOWN, data (or a credit request when the guest
// has no room), CREDIT_UPDATE. Every packet carries c's credit.
func (m *muxer) connPacket(c *conn, ch *virtio.DescriptorChain) (bool, error) {
	h := header{srcCID: HostCID, dstCID: m.cid, srcPort: c.key.local, dstPort: c.key.peer, typ: typeStream, bufAlloc: bufAlloc}
	var payload []byte
	for h.op == opInvalid {
		switch {
		case c.pending&pendRST != 0:
			h.op = opRST
			h.bufAlloc = 0
			m.remove(c)
		case c.pending&pendResponse != 0:
			c.pending &^= pendResponse
			c.state = stateEstablished
			h.op = opResponse
		case c.pending&pendRequest != 0:
			c.pending &^= pendRequest
			h.op = opRequest
			m.setExpiry(c, requestTimeout)
		case c.pending&pendShutdown != 0:
			c.pending &^= pendShutdown
			h.op = opShutdown
			h.flags = c.shutFlags
		case c.dataReady() && c.credit() == 0 && !c.creditAsked:
			c.creditAsked = true
			h.op = opCreditRequest
		case c.dataReady() && c.credit() > 0:
			space := min(ch.WritableLen()-hdrSize, maxPayload, uint64(c.credit()))
			n, err := readFD(c.fd, m.scratch[:space])
			switch {
			case err == unix.EAGAIN:
				c.readable = false
			case err != nil:
				m.debug("vsock: reading from a host connection", "local_port", c.key.local, "peer_port", c.key.peer, "err", err)
				m.kill(c)
			case n == 0:
				m.hostEOF(c)
			default:
				h.op = opRW
				h.len = uint32(n)
				c.toGuest += uint32(n)
				payload = m.scratch[:n]
			}
		case c.pending&pendCreditUpdate != 0:
			h.op = opCreditUpdate
		default:
			return false, nil
		}
	}
	c.pending &^= pendCreditUpdate // every packet carries the credit
	h.fwdCnt = c.fwdCnt
	if h.op != opRST {
		c.lastFwdSent = c.fwdCnt
	} else {
		h.fwdCnt = 0
	}
	return true, m.emit(ch, &h, payload)
}

// emit writes a header and its payload into a receive chain.
func (m *muxer) emit(ch *virtio.DescriptorChain, h *header, payload []byte) error {
	h.encode(&m.hdr)
	if _, err := ch.Write(m.hdr[:]); err != nil {
		return err
	}
	if len(payload) > 0 {
		if _, err := ch.Write(payload); err != nil {
			return err
		}
	}
	m.ctr.rxPackets.Inc()
	m.ctr.rxBytes.Add(uint64(len(payload)))
	if h.op == opRST {
		m.ctr.resets.Inc()
	}
	return nil
}

// eventTransportReset is VIRTIO_VSOCK_EVENT_TRANSPORT_RESET.
const eventTransportReset = 0

// processEvents delivers a due TRANSPORT_RESET event (struct
// virtio_vsock_event: one le32 id) into the event queue.
func (m *muxer) processEvents() error {
	q, ch := m.queues[eventQueue], m.chains[eventQueue]
	for m.resetEvent && q != nil {
		ok, err := q.Next(ch)
		if errors.Is(err, virtio.ErrBadChain) {
			m.stats.badChains++
			if err := q.AddUsed(ch.Head(), 0); err != nil {
				return err
			}
			continue
		}
		if err != nil || !ok {
			return err
		}
		var ev [4]byte
		binary.LittleEndian.PutUint32(ev[:], eventTransportReset)
		if _, err := ch.Write(ev[:]); err != nil {
			m.stats.badChains++ // a buffer too small for an event
			if err := q.AddUsed(ch.Head(), 0); err != nil {
				return err
			}
			continue
		}
		m.resetEvent = false
		if err := q.AddUsed(ch.Head(), ch.Written()); err != nil {
			return err
		}
	}
	return nil
}
