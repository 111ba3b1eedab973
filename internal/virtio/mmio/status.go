package mmio

import (
	"fmt"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// setStatus handles a driver write to the status register; t.mu is held.
// Writing 0 resets the device. Otherwise the driver may only add bits:
// FEATURES_OK sticks only if the accepted features are acceptable, and
// DRIVER_OK activates the device.
func (t *Transport) setStatus(v uint32) {
	if v == 0 {
		t.reset()
		return
	}
	old := t.status.Load()
	if cleared := old &^ v &^ virtio.StatusDeviceNeedsReset; cleared != 0 {
		t.log.Debug("virtio-mmio: driver tried to clear status bits; ignored", "device", t.id, "status", old, "write", v)
		return
	}
	v &^= virtio.StatusDeviceNeedsReset // the device's bit, not the driver's
	set := v &^ old
	if set&virtio.StatusFeaturesOK != 0 {
		if err := t.checkFeatures(); err != nil {
			t.log.Warn("virtio-mmio: refusing the driver's features", "device", t.id, "err", err)
			v &^= virtio.StatusFeaturesOK
		}
	}
	activate := set&virtio.StatusDriverOK != 0
	if activate && v&virtio.StatusFeaturesOK == 0 {
		v &^= virtio.StatusDriverOK
		activate = false
		t.status.Or(v)
		t.needsReset(ErrOrder)
		return
	}
	t.status.Or(v)
	if activate {
		if err := t.activate(); err != nil {
			t.dev.Reset()
			t.needsReset(err)
		}
	}
}

// checkFeatures validates the features the driver accepted.
func (t *Transport) checkFeatures() error {
	if extra := t.drvFeatures &^ t.offered; extra != 0 || t.badFeatures {
		return fmt.Errorf("%w: %#x (offered %#x)", ErrFeatures, extra, t.offered)
	}
	if t.drvFeatures&virtio.FeatureVersion1 == 0 {
		return ErrLegacy
	}
	return nil
}

// activate configures the ready queues and starts the device; t.mu is held.
func (t *Transport) activate() error {
	for i := range t.regs {
		r := &t.regs[i]
		q := t.queues[i]
		if !r.ready {
			q.Reset()
			continue
		}
		if r.num > 0xffff {
			return fmt.Errorf("%s queue %d: %w (%d)", t.id, i, ErrQueueNum, r.num)
		}
		cfg := virtio.QueueConfig{Size: uint16(r.num), DescTable: r.desc, AvailRing: r.driver, UsedRing: r.device}
		if err := q.Configure(t.mem, cfg, t.drvFeatures); err != nil {
			return fmt.Errorf("%s queue %d: %w", t.id, i, err)
		}
	}
	if err := t.dev.Activate(t.activateContext()); err != nil {
		return fmt.Errorf("activating %s: %w", t.id, err)
	}
	t.active = true
	return nil
}

// activateContext is what the device gets when it starts; t.mu is held.
func (t *Transport) activateContext() virtio.ActivateContext {
	return virtio.ActivateContext{
		Mem:        t.mem,
		Features:   t.drvFeatures,
		Queues:     t.queues,
		Notify:     t.notify,
		Interrupt:  t.intr,
		NeedsReset: t.needsReset,
		Log:        t.log.With("device", t.id.String()),
	}
}

// needsReset marks the device broken: DEVICE_NEEDS_RESET, and a
// configuration-change interrupt if the driver had set DRIVER_OK. It is
// lock-free so that device workers may call it at any time.
func (t *Transport) needsReset(err error) {
	t.log.Error("virtio device needs a reset", "device", t.id, "err", err)
	old := t.status.Or(virtio.StatusDeviceNeedsReset)
	if old&virtio.StatusDriverOK != 0 && old&virtio.StatusDeviceNeedsReset == 0 {
		t.isr.raise(IntConfigChange)
		if err := t.trigger.Trigger(); err != nil {
			t.log.Error("virtio-mmio: raising the interrupt", "device", t.id, "err", err)
		}
	}
}

// reset returns the device and the registers to their initial state;
// t.mu is held.
func (t *Transport) reset() {
	t.dev.Reset()
	for _, q := range t.queues {
		q.Reset()
	}
	clear(t.regs)
	t.devFeatSel, t.drvFeatSel, t.queueSel = 0, 0, 0
	t.drvFeatures, t.badFeatures = 0, false
	t.active = false
	for _, e := range t.notify {
		e.Drain()
	}
	t.isr.store(0)
	t.status.Store(0)
}

// interrupt is the transport's virtio.Interrupt: the interrupt status
// register plus the irqfd (or the WithTrigger output).
type interrupt struct{ t *Transport }

// Used raises a used-buffer interrupt if q's driver wants one.
func (i *interrupt) Used(q *virtio.Queue) error {
	n, err := q.NeedsNotify()
	if err != nil || !n {
		return err
	}
	i.t.isr.raise(IntUsedBuffer)
	return i.t.trigger.Trigger()
}

// ConfigChanged bumps the configuration generation and raises a
// configuration-change interrupt.
func (i *interrupt) ConfigChanged() error {
	i.t.configGen.Add(1)
	i.t.isr.raise(IntConfigChange)
	return i.t.trigger.Trigger()
}
