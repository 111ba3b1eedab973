package mmio

import (
	"errors"
	"testing"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

func TestIdentification(t *testing.T) {
	tr, _, _ := newTransport(t)
	for _, c := range []struct {
		off  uint64
		want uint32
	}{
		{regMagic, 0x74726976},
		{regVersion, 2},
		{regDeviceID, uint32(virtio.IDRNG)},
		{regVendorID, VendorID},
		{regSHMLenLow, 0xffffffff},
		{0x0f8, 0}, // reserved
	} {
		if got := rd(tr, c.off); got != c.want {
			t.Errorf("register %#x = %#x, want %#x", c.off, got, c.want)
		}
	}
	// Only aligned 32-bit accesses reach registers.
	b := []byte{0xaa, 0xbb}
	tr.Read(regMagic, b)
	if b[0] != 0 || b[1] != 0 {
		t.Errorf("16-bit read of the magic = %x, want zeros", b)
	}
	b4 := []byte{1, 2, 3, 4}
	tr.Read(regMagic+2, b4)
	if b4[0] != 0 {
		t.Errorf("misaligned read = %x", b4)
	}
	tr.Write(regStatus, []byte{1}) // ignored
	if rd(tr, regStatus) != 0 {
		t.Error("8-bit status write was applied")
	}
}

func TestFeatureNegotiation(t *testing.T) {
	tr, dev, _ := newTransport(t)
	dev.features |= virtio.FeatureRingPacked // not implemented: never offered
	tr2, err := New(dev, tr.mem, WithTrigger(&counter{}))
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	wr(tr2, regDeviceFeaturesSel, 0)
	lo := rd(tr2, regDeviceFeatures)
	wr(tr2, regDeviceFeaturesSel, 1)
	hi := rd(tr2, regDeviceFeatures)
	wr(tr2, regDeviceFeaturesSel, 2)
	if rd(tr2, regDeviceFeatures) != 0 {
		t.Error("feature word 2 is not zero")
	}
	if got := uint64(hi)<<32 | uint64(lo); got != testFeatures {
		t.Errorf("offered %#x, want %#x", got, uint64(testFeatures))
	}

	if s := negotiate(tr, virtio.FeatureVersion1|virtio.FeatureEventIdx); s&virtio.StatusFeaturesOK == 0 {
		t.Errorf("FEATURES_OK refused for a valid subset (status %#x)", s)
	}
	// After FEATURES_OK the accepted features are frozen.
	wr(tr, regDriverFeaturesSel, 0)
	wr(tr, regDriverFeatures, 0)
	if tr.drvFeatures != virtio.FeatureVersion1|virtio.FeatureEventIdx {
		t.Errorf("driver features changed after FEATURES_OK: %#x", tr.drvFeatures)
	}
}

func TestFeaturesOKRefused(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(tr *Transport)
	}{
		{"feature not offered", func(tr *Transport) { negotiate(tr, virtio.FeatureVersion1|virtio.FeatureRingPacked) }},
		{"device-type bit not offered", func(tr *Transport) { negotiate(tr, virtio.FeatureVersion1|1<<5) }},
		{"no VERSION_1", func(tr *Transport) { negotiate(tr, virtio.FeatureEventIdx) }},
		{"bits beyond 64", func(tr *Transport) {
			wr(tr, regStatus, virtio.StatusAcknowledge|virtio.StatusDriver)
			wr(tr, regDriverFeaturesSel, 2)
			wr(tr, regDriverFeatures, 1)
			wr(tr, regDriverFeaturesSel, 1)
			wr(tr, regDriverFeatures, 1) // VERSION_1
			wr(tr, regStatus, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, dev, _ := newTransport(t)
			c.setup(tr)
			if s := rd(tr, regStatus); s&virtio.StatusFeaturesOK != 0 {
				t.Fatalf("FEATURES_OK accepted (status %#x)", s)
			}
			// DRIVER_OK without FEATURES_OK: the device does not start.
			wr(tr, regStatus, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusDriverOK)
			if dev.activations != 0 {
				t.Fatal("device activated without FEATURES_OK")
			}
			if s := rd(tr, regStatus); s&virtio.StatusDeviceNeedsReset == 0 {
				t.Errorf("status %#x lacks DEVICE_NEEDS_RESET", s)
			}
		})
	}
}

func TestActivateNotifyInterrupt(t *testing.T) {
	tr, dev, irq := newTransport(t)
	if negotiate(tr, virtio.FeatureVersion1|virtio.FeatureEventIdx)&virtio.StatusFeaturesOK == 0 {
		t.Fatal("FEATURES_OK refused")
	}
	wr(tr, regQueueSel, 0)
	if rd(tr, regQueueReady) != 0 || rd(tr, regQueueNumMax) != 16 {
		t.Fatalf("queue 0: ready %d, max %d", rd(tr, regQueueReady), rd(tr, regQueueNumMax))
	}
	wr(tr, regQueueSel, 2)
	if rd(tr, regQueueNumMax) != 0 {
		t.Error("QueueNumMax of a missing queue is not 0")
	}
	wr(tr, regQueueNum, 4) // ignored
	setupQueue(tr, 0, 16, 0x10000, 0x11000, 0x12000)
	if rd(tr, regQueueReady) != 1 {
		t.Fatal("queue 0 not ready")
	}
	// A ready queue is frozen.
	wr(tr, regQueueNum, 8)
	wr(tr, regQueueDescLow, 0x20000)
	wr(tr, regStatus, driverOK)
	if dev.activations != 1 || rd(tr, regStatus) != driverOK {
		t.Fatalf("activations %d, status %#x", dev.activations, rd(tr, regStatus))
	}
	ctx := dev.ctx
	q0, q1 := ctx.Queues[0], ctx.Queues[1]
	if !q0.Ready() || q1.Ready() || q0.Config() != (virtio.QueueConfig{Size: 16, DescTable: 0x10000, AvailRing: 0x11000, UsedRing: 0x12000}) {
		t.Fatalf("queues: %+v ready %v, q1 ready %v", q0.Config(), q0.Ready(), q1.Ready())
	}
	if ctx.Features != virtio.FeatureVersion1|virtio.FeatureEventIdx || !q0.EventIdx() {
		t.Errorf("features %#x", ctx.Features)
	}
	// Queue registers are frozen while the device runs.
	wr(tr, regQueueSel, 1)
	wr(tr, regQueueReady, 1)
	if rd(tr, regQueueReady) != 0 {
		t.Error("queue 1 made ready after DRIVER_OK")
	}

	// Notifications that exit to the VMM reach the same eventfd.
	wr(tr, regQueueNotify, 0)
	wr(tr, regQueueNotify, 7) // no such queue
	if n, _ := ctx.Notify[0].Drain(); n != 1 {
		t.Errorf("notify eventfd count %d, want 1", n)
	}

	// A used buffer (driver wants every interrupt: used_event 0 crossed).
	mem := tr.mem
	mem.PutUint16(0x11000+2, 1) // avail idx 1, ring[0] = 0
	mem.PutUint64(0x10000, 0x30000)
	mem.PutUint32(0x10000+8, 16)
	mem.PutUint16(0x10000+12, virtio.DescFlagWrite)
	c := q0.NewChain()
	if ok, err := q0.Pop(c); !ok || err != nil {
		t.Fatalf("Pop = %v, %v", ok, err)
	}
	q0.AddUsed(c.Head(), 4)
	if err := ctx.Interrupt.Used(q0); err != nil {
		t.Fatal(err)
	}
	if rd(tr, regInterruptStatus) != IntUsedBuffer || irq.n.Load() != 1 {
		t.Fatalf("ISR %#x, %d interrupts", rd(tr, regInterruptStatus), irq.n.Load())
	}
	ctx.Interrupt.Used(q0) // nothing new: no interrupt
	if irq.n.Load() != 1 {
		t.Error("interrupt without new used buffers")
	}
	wr(tr, regInterruptACK, IntUsedBuffer)
	if rd(tr, regInterruptStatus) != 0 {
		t.Error("ACK did not clear the interrupt status")
	}

	// Configuration changes bump the generation.
	gen := rd(tr, regConfigGeneration)
	ctx.Interrupt.ConfigChanged()
	if rd(tr, regConfigGeneration) != gen+1 || rd(tr, regInterruptStatus) != IntConfigChange {
		t.Error("ConfigChanged did not bump the generation and raise the config interrupt")
	}

	// The worker path to NEEDS_RESET: status bit and one config interrupt.
	wr(tr, regInterruptACK, 3)
	before := irq.n.Load()
	ctx.NeedsReset(errors.New("backend gone"))
	ctx.NeedsReset(errors.New("again"))
	if rd(tr, regStatus)&virtio.StatusDeviceNeedsReset == 0 || irq.n.Load() != before+1 || rd(tr, regInterruptStatus) != IntConfigChange {
		t.Errorf("after NeedsReset: status %#x, interrupts %d, ISR %#x", rd(tr, regStatus), irq.n.Load()-before, rd(tr, regInterruptStatus))
	}
	// A status write that keeps the driver's bits leaves NEEDS_RESET alone.
	wr(tr, regStatus, driverOK)
	if rd(tr, regStatus)&virtio.StatusDeviceNeedsReset == 0 {
		t.Error("driver write cleared DEVICE_NEEDS_RESET")
	}

	// Reset.
	ctx.Notify[0].Signal()
	wr(tr, regStatus, 0)
	if dev.resets == 0 || dev.active || rd(tr, regStatus) != 0 || rd(tr, regInterruptStatus) != 0 {
		t.Fatalf("after reset: resets %d, status %#x", dev.resets, rd(tr, regStatus))
	}
	wr(tr, regQueueSel, 0)
	if rd(tr, regQueueReady) != 0 || q0.Ready() {
		t.Error("queue still ready after reset")
	}
	if n, _ := ctx.Notify[0].Drain(); n != 0 {
		t.Error("stale notification survived the reset")
	}
	// And the device can be brought up again.
	negotiate(tr, virtio.FeatureVersion1)
	setupQueue(tr, 0, 8, 0x10000, 0x11000, 0x12000)
	wr(tr, regStatus, driverOK)
	if dev.activations != 2 {
		t.Errorf("activations after re-initialisation: %d", dev.activations)
	}
}

func TestActivationFailures(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(tr *Transport, dev *fakeDevice)
	}{
		{"queue size not a power of two", func(tr *Transport, _ *fakeDevice) {
			setupQueue(tr, 0, 12, 0x10000, 0x11000, 0x12000)
		}},
		{"queue size above the maximum", func(tr *Transport, _ *fakeDevice) {
			setupQueue(tr, 0, 32, 0x10000, 0x11000, 0x12000)
		}},
		{"queue size above 16 bits", func(tr *Transport, _ *fakeDevice) {
			setupQueue(tr, 0, 0x10010, 0x10000, 0x11000, 0x12000)
		}},
		{"ring outside RAM", func(tr *Transport, _ *fakeDevice) {
			setupQueue(tr, 0, 16, 0x10000, 0x11000, 0xd0000000)
		}},
		{"misaligned descriptor table", func(tr *Transport, _ *fakeDevice) {
			setupQueue(tr, 0, 16, 0x10008, 0x11000, 0x12000)
		}},
		{"device refuses", func(tr *Transport, dev *fakeDevice) {
			setupQueue(tr, 0, 16, 0x10000, 0x11000, 0x12000)
			dev.activateErr = virtio.ErrMissingQueue
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, dev, irq := newTransport(t)
			negotiate(tr, virtio.FeatureVersion1)
			c.setup(tr, dev)
			wr(tr, regStatus, driverOK)
			if dev.active {
				t.Fatal("device active")
			}
			if s := rd(tr, regStatus); s != driverOK|virtio.StatusDeviceNeedsReset {
				t.Errorf("status %#x, want DRIVER_OK|DEVICE_NEEDS_RESET", s)
			}
			if rd(tr, regInterruptStatus) != IntConfigChange || irq.n.Load() != 1 {
				t.Errorf("ISR %#x, interrupts %d", rd(tr, regInterruptStatus), irq.n.Load())
			}
			// A reset recovers.
			dev.activateErr = nil
			negotiate(tr, virtio.FeatureVersion1)
			setupQueue(tr, 0, 16, 0x10000, 0x11000, 0x12000)
			wr(tr, regStatus, driverOK)
			if !dev.active || rd(tr, regStatus) != driverOK {
				t.Errorf("after reset: active %v, status %#x", dev.active, rd(tr, regStatus))
			}
		})
	}
}

func TestStatusCannotClearBits(t *testing.T) {
	tr, _, _ := newTransport(t)
	negotiate(tr, virtio.FeatureVersion1)
	wr(tr, regStatus, virtio.StatusAcknowledge)
	if s := rd(tr, regStatus); s&virtio.StatusFeaturesOK == 0 {
		t.Errorf("status %#x: the driver cleared bits without a reset", s)
	}
}

func TestConfigSpace(t *testing.T) {
	tr, dev, _ := newTransport(t)
	dev.config = [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	b := make([]byte, 8)
	tr.Read(regConfig, b)
	if string(b) != "\x01\x02\x03\x04\x05\x06\x07\x08" {
		t.Errorf("config read %x", b)
	}
	b1 := []byte{0}
	tr.Read(regConfig+6, b1)
	if b1[0] != 7 {
		t.Errorf("byte read %x", b1)
	}
	tr.Write(regConfig+1, []byte{0xee, 0xff})
	if dev.config[1] != 0xee || dev.config[2] != 0xff {
		t.Errorf("config write: %x", dev.config)
	}
	tr.Read(WindowSize-4, b[:4]) // beyond the device's space
	if b[0] != 0 {
		t.Errorf("read beyond config space: %x", b[:4])
	}
}

// TestRegisterAccessAllocs: the vCPU exit path through the register window
// (register reads and writes, config space, notify fallback) allocates
// nothing.
func TestRegisterAccessAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	tr, _, _ := newTransport(t)
	negotiate(tr, virtio.FeatureVersion1)
	var b4 [4]byte
	var b1 [1]byte
	allocs := testing.AllocsPerRun(1000, func() {
		tr.Read(regInterruptStatus, b4[:])
		tr.Write(regInterruptACK, b4[:])
		tr.Read(regConfig+1, b1[:])
		tr.Write(regQueueNotify, b4[:])
		tr.Read(regStatus, b4[:])
	})
	if allocs != 0 {
		t.Errorf("%v allocations per access sequence, want 0", allocs)
	}
	tr.notify[0].Drain()
}
