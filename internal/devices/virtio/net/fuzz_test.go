package net

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// splitBufs writes data into guest memory at base and describes it as up
// to n consecutive buffers, cut at positions drawn from cuts.
func splitBufs(t testing.TB, d *virtiotest.Driver, base uint64, data []byte, n int, cuts []byte) []virtiotest.Buf {
	if err := d.Mem.WriteAt(data, base); err != nil {
		t.Fatal(err)
	}
	var bufs []virtiotest.Buf
	off := 0
	for i := 0; i < n-1 && i < len(cuts) && off < len(data); i++ {
		k := min(int(cuts[i])*64+1, len(data)-off)
		bufs = append(bufs, virtiotest.Buf{Addr: base + uint64(off), Len: uint32(k)})
		off += k
	}
	return append(bufs, virtiotest.Buf{Addr: base + uint64(off), Len: uint32(len(data) - off)})
}

// FuzzNetTx sends arbitrary packets (header and frame, cut into up to
// four descriptors) with arbitrary negotiated offloads: each is either
// written to the TAP unchanged with a header valid for those features, or
// dropped; the chain always comes back and the device never fails.
func FuzzNetTx(f *testing.F) {
	f.Add(uint16(linuxFeatures&0xffff), byte(2), []byte{1, 1}, concat(hdrBytes(header{}), frame(60, 1)))
	f.Add(uint16(linuxFeatures&0xffff), byte(1), []byte{}, concat(hdrBytes(header{flags: hdrNeedsCSUM, gsoType: gsoTCPv4, gsoSize: 1448, hdrLen: 54, csumStart: 34, csumOffset: 16}), frame(3000, 2)))
	f.Add(uint16(0), byte(3), []byte{0, 0, 0}, concat(hdrBytes(header{flags: hdrNeedsCSUM, csumStart: 34, csumOffset: 16}), frame(100, 3)))
	f.Add(uint16(linuxFeatures&0xffff), byte(4), []byte{0, 0, 0}, []byte{1, 2, 3})
	f.Add(uint16(linuxFeatures&0xffff), byte(1), []byte{}, concat(hdrBytes(header{flags: hdrNeedsCSUM, gsoType: gsoTCPv6 | gsoECN, gsoSize: 1}), frame(14, 0)))
	r, p := idlePair(f, linuxFeatures)
	tx := r.tx(0)
	area := tx.Alloc(maxPacketLen + 4096)
	in := make([]byte, maxPacketLen+1)
	f.Fuzz(func(t *testing.T, feat uint16, n byte, cuts []byte, pkt []byte) {
		if len(pkt) > maxPacketLen+64 {
			return
		}
		p.features = linuxFeatures&^0xffff | uint64(feat)
		head := tx.AddChain(splitBufs(t, tx, area, pkt, int(n%4)+1, cuts)...)
		before := r.dev.Stats()[0]
		if _, err := p.transmit(true); err != nil {
			t.Fatalf("transmit: %v", err)
		}
		id, length, ok := tx.NextUsed()
		if !ok || id != uint32(head) || length != 0 {
			t.Fatalf("used %v %d/%d, want %d/0", ok, id, length, head)
		}
		after := r.dev.Stats()[0]
		k, err := unix.Read(r.tap.peer[0], in)
		if after.TxPackets == before.TxPackets {
			if err == nil {
				t.Fatalf("a dropped packet reached the TAP (%d bytes)", k)
			}
			return
		}
		if err != nil || !bytes.Equal(in[:k], pkt) {
			t.Fatalf("TAP got %d bytes (%v), want the %d sent", k, err, len(pkt))
		}
		if err := decodeHeader(pkt).checkTx(len(pkt)-hdrLen, p.features); err != nil {
			t.Fatalf("an invalid packet went out: %v", err)
		}
	})
}

// FuzzNetRx hands arbitrary packets from the TAP to receive buffers of
// arbitrary sizes, with or without merging: the driver gets the whole
// packet with a consistent header, or nothing (no buffer comes back with
// data); no buffer is overfilled and the device never fails.
func FuzzNetRx(f *testing.F) {
	f.Add(true, uint16(guestOffloads), []byte{20, 20, 20}, concat(hdrBytes(header{}), frame(3000, 1)))
	f.Add(false, uint16(guestOffloads), []byte{40}, concat(hdrBytes(header{flags: hdrNeedsCSUM, csumStart: 34, csumOffset: 16}), frame(100, 1)))
	f.Add(true, uint16(0), []byte{0, 1}, concat(hdrBytes(header{flags: hdrDataValid, gsoType: gsoTCPv4}), frame(100, 1)))
	f.Add(true, uint16(guestOffloads), []byte{}, []byte{1})
	f.Add(true, uint16(guestOffloads), []byte{255, 0, 255}, concat(hdrBytes(header{gsoType: gsoTCPv4, gsoSize: 1000, flags: hdrNeedsCSUM}), frame(20000, 1)))
	r, p := idlePair(f, linuxFeatures)
	rx := r.rx(0)
	area := rx.Alloc(64 * 255 * 16)
	f.Fuzz(func(t *testing.T, mrg bool, offloads uint16, sizes []byte, pkt []byte) {
		if len(pkt) > maxPacketLen || len(sizes) > 64 {
			return
		}
		p.mrg = mrg
		offl := uint64(offloads) & guestOffloads
		r.dev.offloads.Store(offl)
		bufs := map[uint32]virtiotest.Buf{}
		addr := area
		for _, s := range sizes {
			b := virtiotest.Buf{Addr: addr, Len: uint32(s) * 16, Write: true}
			bufs[uint32(rx.AddChain(b))] = b
			addr += uint64(b.Len)
		}
		if _, err := unix.Write(r.tap.peer[0], pkt); err != nil {
			t.Skipf("the socket refused %d bytes: %v", len(pkt), err)
		}
		before := r.dev.Stats()[0].RxPackets
		if _, err := p.receive(true); err != nil {
			t.Fatalf("receive: %v", err)
		}
		delivered := r.dev.Stats()[0].RxPackets != before
		var got []byte
		count := 0
		for {
			id, n, ok := rx.NextUsed()
			if !ok {
				break
			}
			b, known := bufs[id]
			if !known || n > b.Len {
				t.Fatalf("used element %d/%d for buffers %v", id, n, bufs)
			}
			if n > 0 {
				count++
				got = append(got, virtiotest.Bytes(t, r.mem, b.Addr, int(n))...)
			}
		}
		if !delivered {
			if len(got) != 0 {
				t.Fatalf("%d bytes delivered for a dropped packet", len(got))
			}
		} else {
			if len(got) != len(pkt) {
				t.Fatalf("delivered %d bytes of a %d-byte packet", len(got), len(pkt))
			}
			h := decodeHeader(got)
			if int(h.numBuffers) != count || (!mrg && count != 1) {
				t.Fatalf("num_buffers %d for %d buffers (mergeable %v)", h.numBuffers, count, mrg)
			}
			in := decodeHeader(pkt)
			if err := in.fixRx(len(pkt)-hdrLen, offl); err != nil {
				t.Fatalf("delivered a packet the driver cannot accept: %v", err)
			}
			in.numBuffers = h.numBuffers
			if h != in || !bytes.Equal(got[hdrLen:], pkt[hdrLen:]) {
				t.Fatalf("delivered header %+v, want %+v, or the frame differs", h, in)
			}
		}
		// Start the next input from an empty ring: forget a packet still
		// waiting for buffers and return the buffers nobody used.
		p.rxLen, p.rxStalled = 0, false
		c := p.rxChains[0]
		for {
			ok, err := p.rxq.Pop(c)
			if err != nil || !ok {
				break
			}
			p.rxq.AddUsed(c.Head(), 0)
		}
		for {
			if _, _, ok := rx.NextUsed(); !ok {
				break
			}
		}
	})
}

// FuzzNetCtrl sends arbitrary control requests (readable part cut into up
// to three descriptors, a writable part of any size): each comes back with
// an OK or ERR acknowledgement, or unanswered when there is no room for
// one; only well-formed commands change the device.
func FuzzNetCtrl(f *testing.F) {
	f.Add(byte(1), []byte{0}, []byte{ctrlClassMQ, ctrlMQVQPairsSet, 2, 0}, byte(1))
	f.Add(byte(2), []byte{0, 0}, []byte{ctrlClassMQ, ctrlMQVQPairsSet, 9, 0}, byte(1))
	f.Add(byte(0), []byte{}, append([]byte{ctrlClassGuestOffloads, ctrlGuestOffloadsSet}, le64(FeatureGuestCSUM)...), byte(4))
	f.Add(byte(0), []byte{}, []byte{}, byte(0))
	f.Add(byte(0), []byte{}, []byte{7}, byte(200))
	r := buildRig(f, Config{Queues: 2}, linuxFeatures)
	r.dev.log = r.ctx().Log
	r.dev.activePairs.Store(1)
	d := r.ctrl()
	q := r.queues[len(r.queues)-1]
	c := &ctrlQueue{dev: r.dev, q: q, chain: q.NewChain(), irq: r.rec, maxPairs: 2, features: r.features}
	area := d.Alloc(1 << 16)
	ack := d.Alloc(256)
	f.Fuzz(func(t *testing.T, n byte, cuts []byte, req []byte, ackLen byte) {
		if len(req) > 1<<15 {
			return
		}
		bufs := splitBufs(t, d, area, req, int(n%3)+1, cuts)
		if ackLen > 0 {
			d.Mem.WriteAt([]byte{0xee}, ack)
			bufs = append(bufs, virtiotest.Buf{Addr: ack, Len: uint32(ackLen), Write: true})
		}
		head := d.AddChain(bufs...)
		if _, err := c.handle(0); err != nil {
			t.Fatalf("handle: %v", err)
		}
		id, length, ok := d.NextUsed()
		if !ok || id != uint32(head) {
			t.Fatalf("used %v %d, want %d", ok, id, head)
		}
		if ackLen == 0 {
			if length != 0 {
				t.Fatalf("used length %d without room for an acknowledgement", length)
			}
			return
		}
		got := virtiotest.Bytes(t, r.mem, ack, 1)[0]
		if length != 1 || got > ctrlErr {
			t.Fatalf("acknowledgement %d, used length %d", got, length)
		}
		pairs := r.dev.activePairs.Load()
		if got == ctrlOK && len(req) == 4 && req[0] == ctrlClassMQ && int32(binary.LittleEndian.Uint16(req[2:])) != pairs {
			t.Fatalf("VQ_PAIRS_SET %d acknowledged, %d pairs active", binary.LittleEndian.Uint16(req[2:]), pairs)
		}
		if pairs < 1 || pairs > 2 {
			t.Fatalf("%d active pairs", pairs)
		}
	})
}
