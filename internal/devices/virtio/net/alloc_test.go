package net

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// idlePair prepares pair 0 of an inactive rig to be driven directly from
// the test goroutine, without its worker.
func idlePair(t testing.TB, features uint64) (*rig, *pair) {
	t.Helper()
	r := buildRig(t, Config{}, features)
	ctx := r.ctx()
	r.dev.features = ctx.Features
	r.dev.log = ctx.Log
	r.dev.offloads.Store(ctx.Features & guestOffloads)
	r.dev.activePairs.Store(1)
	p, err := r.dev.newPair(0, ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop()
		r.dev.features = 0
	})
	return r, p
}

// TestPacketPathAllocs: moving packets in either direction allocates
// nothing, with merged receive buffers or without.
func TestPacketPathAllocs(t *testing.T) {
	for _, c := range []struct {
		name     string
		features uint64
	}{{"mergeable", linuxFeatures}, {"plain", linuxFeatures &^ FeatureMrgRxbuf}} {
		t.Run(c.name, func(t *testing.T) {
			r, p := idlePair(t, c.features)
			tx, rx := r.tx(0), r.rx(0)
			pkt := concat(hdrBytes(header{flags: hdrNeedsCSUM, csumStart: 34, csumOffset: 16}), frame(1400, 1))
			hb, fb := putBytes(t, tx, pkt[:hdrLen]), putBytes(t, tx, pkt[hdrLen:])
			in := make([]byte, maxPacketLen)
			txAllocs := testing.AllocsPerRun(200, func() {
				tx.AddChain(hb, fb)
				if _, err := p.transmit(true); err != nil {
					t.Fatal(err)
				}
				if err := p.irq.Used(p.txq); err != nil {
					t.Fatal(err)
				}
				if n, err := unix.Read(r.tap.peer[0], in); err != nil || n != len(pkt) {
					t.Fatalf("TAP got %d bytes, %v", n, err)
				}
				tx.NextUsed()
			})
			bufs := []virtiotest.Buf{rxBuf(rx, 1000), rxBuf(rx, 1000)}
			if c.features&FeatureMrgRxbuf == 0 {
				bufs = []virtiotest.Buf{rxBuf(rx, 2000)}
			}
			rxAllocs := testing.AllocsPerRun(200, func() {
				for _, b := range bufs {
					rx.AddChain(b)
				}
				if _, err := unix.Write(r.tap.peer[0], pkt); err != nil {
					t.Fatal(err)
				}
				if _, err := p.receive(true); err != nil {
					t.Fatal(err)
				}
				if err := p.irq.Used(p.rxq); err != nil {
					t.Fatal(err)
				}
				for range bufs {
					if _, _, ok := rx.NextUsed(); !ok {
						t.Fatal("packet not delivered")
					}
				}
			})
			if txAllocs != 0 || rxAllocs != 0 {
				t.Errorf("%v allocations per transmitted packet, %v per received one; want 0", txAllocs, rxAllocs)
			}
			if s := r.dev.Stats()[0]; s.RxPackets < 200 || s.TxPackets < 200 || s.RxDropped+s.TxDropped != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// TestWorkerLoopAllocs: a pass of the worker loop over its events
// allocates nothing either.
func TestWorkerLoopAllocs(t *testing.T) {
	_, p := idlePair(t, linuxFeatures)
	allocs := testing.AllocsPerRun(200, func() {
		p.arm()
		p.events()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per loop pass", allocs)
	}
}
