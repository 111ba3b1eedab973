package net

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/mmio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

type edges struct{ n atomic.Int32 }

func (e *edges) Trigger() error { e.n.Add(1); return nil }

// TestBehindMMIO brings a two-pair device up through the virtio-mmio
// registers the way Linux's virtio_net does (features, five queues,
// DRIVER_OK, VQ_PAIRS_SET), reads the configuration space, sends a packet
// notified through QueueNotify and resets the device.
func TestBehindMMIO(t *testing.T) {
	mem := virtiotest.NewMemory(t, memSize)
	tap := newFakeTap(t, 2)
	dev, err := New(Config{Tap: "fake0", Queues: 2, MTU: 1400}, tap)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	irq := &edges{}
	tr, err := mmio.New(dev, mem, mmio.WithTrigger(irq), mmio.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	rd := func(off uint64) uint32 {
		var b [4]byte
		tr.Read(off, b[:])
		return binary.LittleEndian.Uint32(b[:])
	}
	wr := func(off uint64, v uint32) {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], v)
		tr.Write(off, b[:])
	}
	if rd(0x008) != uint32(virtio.IDNet) {
		t.Fatal("device ID")
	}
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver)
	wr(0x014, 0)
	lo := rd(0x010)
	wr(0x014, 1)
	hi := rd(0x010)
	offered := uint64(lo) | uint64(hi)<<32
	if offered != dev.Features() {
		t.Fatalf("offered %#x, device %#x", offered, dev.Features())
	}
	accept := offered &^ virtio.FeatureIndirectDesc
	wr(0x024, 0)
	wr(0x020, uint32(accept))
	wr(0x024, 1)
	wr(0x020, uint32(accept>>32))
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK)
	if rd(0x070)&virtio.StatusFeaturesOK == 0 {
		t.Fatal("FEATURES_OK refused")
	}
	if mac := [6]byte{byte(rd(0x100)), byte(rd(0x100) >> 8), byte(rd(0x100) >> 16), byte(rd(0x100) >> 24), byte(rd(0x104)), byte(rd(0x104) >> 8)}; mac != dev.Config().MAC {
		t.Errorf("MAC through the window %x, want %s", mac, dev.Config().MAC)
	}
	if v := rd(0x108); v != 2|1400<<16 {
		t.Errorf("max_virtqueue_pairs/mtu word %#x", v)
	}
	var drivers []*virtiotest.Driver
	for i := range 5 {
		base := uint64(i+1) * queueMem
		d := virtiotest.NewDriver(t, mem, 64, base, base+queueMem)
		drivers = append(drivers, d)
		wr(0x030, uint32(i))
		if rd(0x034) != QueueSize {
			t.Fatalf("queue %d maximum %d", i, rd(0x034))
		}
		c := d.Config()
		wr(0x038, uint32(c.Size))
		wr(0x080, uint32(c.DescTable))
		wr(0x090, uint32(c.AvailRing))
		wr(0x0a0, uint32(c.UsedRing))
		wr(0x044, 1)
	}
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK|virtio.StatusDriverOK)
	if s := rd(0x070); s&virtio.StatusDeviceNeedsReset != 0 {
		t.Fatalf("status %#x", s)
	}
	ctrl := drivers[4]
	ack := ctrl.Alloc(1)
	ctrl.AddChain(putBytes(t, ctrl, []byte{ctrlClassMQ, ctrlMQVQPairsSet, 2, 0}), virtiotest.Buf{Addr: ack, Len: 1, Write: true})
	wr(0x050, 4)
	if _, n := waitUsed(t, ctrl); n != 1 || virtiotest.Bytes(t, mem, ack, 1)[0] != ctrlOK {
		t.Fatal("VQ_PAIRS_SET not acknowledged")
	}
	tx := drivers[3]
	pkt := concat(hdrBytes(header{}), frame(100, 1))
	tx.AddChain(putBytes(t, tx, pkt))
	wr(0x050, 3)
	if got := tap.take(t, 1, 5*time.Second); !bytes.Equal(got, pkt) {
		t.Fatal("packet on transmitq2 did not reach TAP queue 1")
	}
	waitUsed(t, tx)
	if irq.n.Load() == 0 {
		t.Error("no interrupt")
	}
	wr(0x070, 0)
	if rd(0x070) != 0 {
		t.Error("reset did not clear the status")
	}
	if dev.activePairs.Load() != 0 {
		t.Error("workers still marked active after reset")
	}
}
