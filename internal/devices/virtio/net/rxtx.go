package net

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/metrics"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

// counters are one queue pair's statistics.
type counters struct {
	rxPackets, rxBytes, rxDropped metrics.Counter
	rxMerged                      metrics.Counter
	txPackets, txBytes, txDropped metrics.Counter
}

// QueueStats are a queue pair's packet counters; bytes count frames
// without the virtio-net header. RxMerged counts received packets that
// were merged into the one before them (receive coalescing).
type QueueStats struct {
	RxPackets, RxBytes, RxDropped uint64
	TxPackets, TxBytes, TxDropped uint64
	RxMerged                      uint64
}

func (c *counters) snapshot() QueueStats {
	return QueueStats{
		RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(), RxDropped: c.rxDropped.Load(),
		TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(), TxDropped: c.txDropped.Load(),
		RxMerged: c.rxMerged.Load(),
	}
}

// transmit sends the driver's packets to the TAP, at most budget of them;
// it reports whether more may be waiting.
func (p *pair) transmit(active bool) (bool, error) {
	fd := p.txFD(active)
	c := p.txChain
	for range budget {
		ok, err := p.txq.Next(c)
		if errors.Is(err, virtio.ErrBadChain) {
			p.dropTx("malformed descriptor chain", err)
			if err := p.txq.AddUsed(c.Head(), 0); err != nil {
				return false, err
			}
			continue
		}
		if err != nil || !ok {
			return false, err
		}
		if p.send(fd) {
			p.txq.UndoPop()
			p.txBlocked = true
			return false, nil
		}
		if err := p.txq.AddUsed(c.Head(), 0); err != nil {
			return false, err
		}
	}
	return true, nil
}

// send writes the packet in p.txChain to the TAP queue fd with one
// writev: the validated copy of its header, then the frame straight from
// guest memory. It reports true when the TAP cannot take it now; invalid
// packets are dropped.
func (p *pair) send(fd int) (blocked bool) {
	c := p.txChain
	total := c.ReadableLen()
	if total < hdrLen || total > maxPacketLen {
		p.dropTx("packet length out of range", nil)
		return false
	}
	if _, err := c.ReadAt(p.txHdr[:], 0); err != nil {
		p.dropTx("reading the header from guest memory", err)
		return false
	}
	h := decodeHeader(p.txHdr[:])
	if err := h.checkTx(int(total)-hdrLen, p.features); err != nil {
		p.dropTx("invalid header", err)
		return false
	}
	bufs, err := c.ReadableSlices(append(p.txBufs[:0], p.txHdr[:]), hdrLen, total-hdrLen)
	if err != nil {
		p.dropTx("mapping the frame in guest memory", err)
		return false
	}
	p.txBufs = bufs[:0]
	for {
		_, err := writev(fd, p.txIov, bufs)
		switch err {
		case nil:
			p.stats.txPackets.Add(1)
			p.stats.txBytes.Add(total - hdrLen)
			return false
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return true
		}
		p.dropTx("the TAP refused the packet", err)
		return false
	}
}

// receive moves packets from the TAP to the driver's receive buffers, at
// most budget of them; it reports whether more may be waiting. A packet
// that finds no buffer is kept until the driver adds some.
func (p *pair) receive(active bool) (bool, error) {
	if !active {
		for _, n := range []*int{&p.rxLen, &p.nextLen} {
			if *n != 0 {
				*n = 0
				p.dropRx("the driver disabled the queue pair", nil)
			}
		}
		p.rxStalled = false
		return false, nil
	}
	for range budget {
		if p.rxLen == 0 && p.nextLen != 0 {
			p.rxBuf, p.rxNext = p.rxNext, p.rxBuf
			p.rxLen, p.nextLen = p.nextLen, 0
			p.coalesce()
		}
		if p.rxLen == 0 {
			if p.tapFailed {
				return false, nil
			}
			n, err := unix.Read(p.fd, p.rxBuf)
			switch err {
			case nil:
				p.rxLen = n
				p.coalesce()
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false, nil
			case unix.EBADFD, unix.EBADF, unix.ENODEV, unix.EIO:
				if p.active() {
					p.tapFailure(err)
				}
				return false, nil
			default:
				p.dropRx("reading the TAP", err)
				continue
			}
		}
		ok, err := p.deliver()
		if err != nil {
			return false, err
		}
		if !ok {
			p.rxStalled = true
			return false, nil
		}
	}
	return true, nil
}

// coalesce merges the TCP segments that follow the packet in p.rxBuf in
// the TAP into it while they continue it (see merge.go); the first packet
// that does not is kept in p.rxNext.
func (p *pair) coalesce() {
	const both = FeatureGuestCSUM | FeatureGuestTSO4
	if p.dev.offloads.Load()&both != both || p.tapFailed {
		return
	}
	a, ok := parseSegment(p.rxBuf[:p.rxLen])
	if !ok {
		return
	}
	for {
		n, err := unix.Read(p.fd, p.rxNext)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return // EAGAIN; other errors show again on the next read
		}
		b, ok := parseSegment(p.rxNext[:n])
		if !ok || !canMerge(a, p.rxBuf[hdrLen:p.rxLen], b, p.rxNext[hdrLen:n]) {
			p.nextLen = n
			return
		}
		p.rxLen, a = merge(p.rxBuf, p.rxLen, a, p.rxNext[:n], b)
		p.stats.rxMerged.Add(1)
	}
}

// deliver puts the packet in p.rxBuf into receive buffers. It returns
// false when the driver has too few buffers (the packet stays); a packet
// the driver cannot accept is dropped.
func (p *pair) deliver() (bool, error) {
	n := p.rxLen
	if n < hdrLen {
		p.rxLen = 0
		p.dropRx("short read from the TAP", nil)
		return true, nil
	}
	h := decodeHeader(p.rxBuf)
	if err := h.fixRx(n-hdrLen, p.dev.offloads.Load()); err != nil {
		p.rxLen = 0
		p.dropRx("the driver cannot accept the packet", err)
		return true, nil
	}
	if p.mrg {
		return p.deliverMerged(h)
	}
	c := p.rxChains[0]
	for {
		ok, err := p.rxq.Next(c)
		if errors.Is(err, virtio.ErrBadChain) {
			p.dropRx("malformed receive buffer", err)
			if err := p.rxq.AddUsed(c.Head(), 0); err != nil {
				return false, err
			}
			continue
		}
		if err != nil || !ok {
			return false, err
		}
		break
	}
	if c.WritableLen() < uint64(n) {
		// Too small for this packet: keep the buffer for the next one.
		p.rxq.UndoPop()
		p.rxLen = 0
		p.dropRx("packet larger than the receive buffer", nil)
		return true, nil
	}
	h.numBuffers = 1
	h.encode(p.rxBuf)
	if _, err := c.Write(p.rxBuf[:n]); err != nil {
		p.dropRx("writing guest memory", err)
		n = 0
	}
	return p.received(1, n)
}

// deliverMerged spreads the packet over as many buffers as it needs
// (VIRTIO_NET_F_MRG_RXBUF), recording their number in num_buffers.
func (p *pair) deliverMerged(h header) (bool, error) {
	n := p.rxLen
	used := 0
	room := uint64(0)
	for room < uint64(n) {
		if used == len(p.rxChains) {
			// Buffers this small would take too many: keep them.
			for range used {
				p.rxq.UndoPop()
			}
			p.rxLen = 0
			p.dropRx("receive buffers too small for the packet", nil)
			return true, nil
		}
		c := p.rxChains[used]
		ok, err := p.rxq.Next(c)
		if err != nil && !errors.Is(err, virtio.ErrBadChain) {
			return false, err
		}
		if err == nil && !ok {
			for range used {
				p.rxq.UndoPop()
			}
			return false, nil
		}
		if err != nil || c.WritableLen() < hdrLen {
			// A hostile driver: return this buffer and those gathered
			// so far unused (they cannot be given back to the ring past
			// a bad one) and drop the packet.
			p.dropRx("malformed receive buffer", err)
			if err := p.rxq.AddUsed(c.Head(), 0); err != nil {
				return false, err
			}
			for j := range used {
				if err := p.rxq.AddUsed(p.rxChains[j].Head(), 0); err != nil {
					return false, err
				}
			}
			p.rxLen = 0
			return true, nil
		}
		room += c.WritableLen()
		used++
	}
	h.numBuffers = uint16(used)
	h.encode(p.rxBuf)
	off := 0
	for j := range used {
		c := p.rxChains[j]
		k := int(min(uint64(n-off), c.WritableLen()))
		if _, err := c.Write(p.rxBuf[off : off+k]); err != nil {
			p.dropRx("writing guest memory", err)
		}
		off += k
	}
	return p.received(used, n)
}

// received returns the chains holding the packet to the driver, in ring
// order, and counts it.
func (p *pair) received(used, n int) (bool, error) {
	for j := range used {
		c := p.rxChains[j]
		if err := p.rxq.AddUsed(c.Head(), c.Written()); err != nil {
			return false, err
		}
	}
	p.rxLen = 0
	if n > hdrLen {
		p.stats.rxPackets.Add(1)
		p.stats.rxBytes.Add(uint64(n - hdrLen))
	}
	return true, nil
}

// dropTx counts a dropped transmit packet; the 1st, 2nd, 4th, 8th, ...
// drop is logged so a hostile guest cannot flood the log.
func (p *pair) dropTx(why string, err error) {
	if k := p.stats.txDropped.Add(1); k&(k-1) == 0 {
		p.log.Warn("virtio-net: dropped a transmitted packet", "net", p.dev.cfg.ID, "pair", p.idx, "reason", why, "err", err, "dropped", k)
	}
}

// dropRx counts a dropped received packet, logging like dropTx.
func (p *pair) dropRx(why string, err error) {
	if k := p.stats.rxDropped.Add(1); k&(k-1) == 0 {
		p.log.Warn("virtio-net: dropped a received packet", "net", p.dev.cfg.ID, "pair", p.idx, "reason", why, "err", err, "dropped", k)
	}
}
