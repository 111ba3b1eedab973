package vsock

import (
	"testing"

	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// TestConnectionLimit: with the table full, guest requests get an RST
// and host connections are closed at once.
func TestConnectionLimit(t *testing.T) {
	g := newGuest(t)
	for i := range maxConns {
		g.m.conns[connKey{local: uint32(i), peer: 1}] = &conn{fd: -1, state: stateClosing}
	}
	g.hostListen(7000)
	g.postRX(4)
	s := &gsock{g: g, gport: 2, hport: 7000}
	s.send(opRequest, nil)
	g.expect(opRST)
	host := hostDial(t, g.cfg.UDSPath, 0)
	g.expectNone()
	expectEOF(t, host)
	if g.m.stats.refusedConns != 2 {
		t.Errorf("refused %d, want 2", g.m.stats.refusedConns)
	}
}

// TestRSTQueueBounded: stray packets while the guest posts no receive
// buffers cost a bounded queue, not memory.
func TestRSTQueueBounded(t *testing.T) {
	g := newGuest(t)
	s := &gsock{g: g, gport: 1, hport: 2}
	for i := range rstQueueLen + 44 {
		s.gport = uint32(i)
		s.send(opRW, nil)
		if i%100 == 0 {
			g.pump()
			g.txUsed()
		}
	}
	g.pump()
	if g.m.stats.rstsDropped != 44 || g.m.rstLen != rstQueueLen {
		t.Fatalf("queued %d, dropped %d", g.m.rstLen, g.m.stats.rstsDropped)
	}
	got := 0
	for got < rstQueueLen {
		g.postRX(64)
		g.pump()
		for {
			h, _, ok := g.recv()
			if !ok {
				break
			}
			if h.op != opRST || h.dstPort != uint32(got) {
				t.Fatalf("packet %d: %s to port %d", got, opName(h.op), h.dstPort)
			}
			got++
		}
	}
}

// TestMalformedChains: a looping TX chain, a looping RX chain and an
// event buffer too small for an event are returned unused; the device
// goes on.
func TestMalformedChains(t *testing.T) {
	g := newGuest(t)
	loop := func(q int) {
		d := g.drv[q]
		head := d.WriteChain(virtiotest.Buf{Addr: txBase, Len: 8})
		d.SetDesc(d.Desc, head, txBase, 8, virtio.DescFlagNext, head)
		d.Publish(head)
		g.notify[q].Signal()
	}
	loop(txQueue)
	g.pump()
	if g.txUsed() != 1 || g.m.stats.badChains != 1 {
		t.Fatalf("looping TX chain: bad chains %d", g.m.stats.badChains)
	}
	g.rxNext++ // the loop takes a descriptor slot
	loop(rxQueue)
	s := &gsock{g: g, gport: 1, hport: 2}
	s.send(opRW, nil) // owes an RST
	g.postRX(1)
	g.pump()
	if id, n, ok := g.drv[rxQueue].NextUsed(); !ok || n != 0 {
		t.Fatalf("looping RX chain: %d/%d/%v", id, n, ok)
	}
	g.rxOut--
	if h, _, ok := g.recv(); !ok || h.op != opRST {
		t.Fatal("no RST after a bad receive chain")
	}

	ev := g.drv[eventQueue]
	ev.AddChain(virtioBuf{Addr: evBase, Len: 2, Write: true})
	ev.AddChain(g.evBuf())
	g.m.resetEvent = true
	g.pump()
	if _, n, ok := ev.NextUsed(); !ok || n != 0 {
		t.Fatalf("small event buffer used with %d bytes", n)
	}
	if _, n, ok := ev.NextUsed(); !ok || n != 4 {
		t.Fatalf("event buffer used with %d bytes", n)
	}
	if g.irq.Failure() != nil {
		t.Fatal(g.irq.Failure())
	}
}
