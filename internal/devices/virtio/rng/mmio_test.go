package rng

import (
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

// TestBehindMMIO brings the device up through the virtio-mmio registers
// the way Linux's virtio_mmio and virtio_rng drivers do, then serves a
// request notified through the QueueNotify register.
func TestBehindMMIO(t *testing.T) {
	mem := virtiotest.NewMemory(t, memSize)
	irq := &edges{}
	tr, err := mmio.New(New(Config{Source: &pattern{}}), mem, mmio.WithTrigger(irq), mmio.WithLogger(slog.New(slog.DiscardHandler)))
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
	if rd(0x000) != mmio.Magic || rd(0x004) != 2 || rd(0x008) != uint32(virtio.IDRNG) {
		t.Fatal("identification registers")
	}
	wr(0x070, 0)
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver)
	wr(0x014, 1)
	if rd(0x010)&1 == 0 {
		t.Fatal("VERSION_1 not offered")
	}
	wr(0x024, 0)
	wr(0x020, uint32(virtio.FeatureEventIdx))
	wr(0x024, 1)
	wr(0x020, 1)
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK)
	if rd(0x070)&virtio.StatusFeaturesOK == 0 {
		t.Fatal("FEATURES_OK refused")
	}
	drv := virtiotest.NewDriver(t, mem, 64, 0x4000, memSize)
	wr(0x030, 0)
	if rd(0x044) != 0 || rd(0x034) != QueueSize {
		t.Fatal("queue 0 state")
	}
	cfg := drv.Config()
	wr(0x038, uint32(cfg.Size))
	wr(0x080, uint32(cfg.DescTable))
	wr(0x084, 0)
	wr(0x090, uint32(cfg.AvailRing))
	wr(0x094, 0)
	wr(0x0a0, uint32(cfg.UsedRing))
	wr(0x0a4, 0)
	wr(0x044, 1)
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK|virtio.StatusDriverOK)
	if s := rd(0x070); s&virtio.StatusDeviceNeedsReset != 0 {
		t.Fatalf("status %#x", s)
	}

	buf := drv.Alloc(64)
	drv.SetUsedEvent(0)
	drv.AddChain(virtiotest.Buf{Addr: buf, Len: 64, Write: true})
	wr(0x050, 0)
	deadline := time.Now().Add(10 * time.Second)
	for drv.UsedIdx() == 0 || irq.n.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no used buffer/interrupt: used idx %d, interrupts %d", drv.UsedIdx(), irq.n.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if _, n, _ := drv.NextUsed(); n != 64 {
		t.Errorf("used length %d", n)
	}
	if rd(0x060)&mmio.IntUsedBuffer == 0 {
		t.Error("interrupt status lacks the used-buffer bit")
	}
	wr(0x064, mmio.IntUsedBuffer)
	// Reset stops the worker; the device can be brought up again.
	wr(0x070, 0)
	if rd(0x070) != 0 || rd(0x060) != 0 {
		t.Error("reset did not clear status and interrupt status")
	}
}
