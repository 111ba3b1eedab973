package mmio

import (
	"errors"
	"fmt"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// QueueRegs are the driver-programmed registers of one queue.
type QueueRegs struct {
	Num                  uint32
	Ready                bool
	Desc, Driver, Device uint64
}

// State is the transport's state as plain data, with its queues' device-side
// indices and the device's own state when it has any.
type State struct {
	DeviceID    uint32
	Status      uint32
	ISR         uint32
	ConfigGen   uint32
	DevFeatSel  uint32
	DrvFeatSel  uint32
	QueueSel    uint32
	DrvFeatures uint64
	Active      bool
	Regs        []QueueRegs
	Queues      []virtio.QueueState
	Device      []byte `json:",omitempty"`
}

// ErrState reports a saved state that does not fit this transport.
var ErrState = errors.New("mmio: saved state does not match the device")

// Quiesce stops the device's workers, letting in-flight requests finish,
// and keeps the queues' positions, so the state can be saved. Resume
// starts the device again where it stopped.
func (t *Transport) Quiesce() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active {
		t.dev.Reset()
	}
}

// Resume restarts a device stopped by Quiesce.
func (t *Transport) Resume() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.active {
		return nil
	}
	return t.startDevice()
}

// SaveState returns the transport's state. Call it between Quiesce and
// Resume (or with the VM paused and the device inactive).
func (t *Transport) SaveState() (State, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := State{
		DeviceID:    uint32(t.id),
		Status:      t.status.Load(),
		ISR:         t.isr.load(),
		ConfigGen:   t.configGen.Load(),
		DevFeatSel:  t.devFeatSel,
		DrvFeatSel:  t.drvFeatSel,
		QueueSel:    t.queueSel,
		DrvFeatures: t.drvFeatures,
		Active:      t.active,
	}
	for i, r := range t.regs {
		s.Regs = append(s.Regs, QueueRegs{Num: r.num, Ready: r.ready, Desc: r.desc, Driver: r.driver, Device: r.device})
		s.Queues = append(s.Queues, t.queues[i].State())
	}
	if sn, ok := t.dev.(virtio.Snapshotter); ok {
		d, err := sn.SaveState()
		if err != nil {
			return s, fmt.Errorf("saving %s state: %w", t.id, err)
		}
		s.Device = d
	}
	return s, nil
}

// RestoreState loads a saved state into a new transport whose device was
// built from the same configuration, and starts the device if it was
// active. Every value is checked as if the driver had written it.
func (t *Transport) RestoreState(s State) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.DeviceID != uint32(t.id) || len(s.Regs) != len(t.regs) || len(s.Queues) != len(t.queues) {
		return fmt.Errorf("%w: %s with %d queues, state has device %d with %d queues", ErrState, t.id, len(t.regs), s.DeviceID, len(s.Regs))
	}
	if s.DrvFeatures&^t.offered != 0 {
		return fmt.Errorf("%w: %s features %#x were not offered", ErrState, t.id, s.DrvFeatures)
	}
	if sn, ok := t.dev.(virtio.Snapshotter); ok && s.Device != nil {
		if err := sn.RestoreState(s.Device); err != nil {
			return fmt.Errorf("restoring %s state: %w", t.id, err)
		}
	}
	t.devFeatSel, t.drvFeatSel, t.queueSel = s.DevFeatSel, s.DrvFeatSel, s.QueueSel
	t.drvFeatures = s.DrvFeatures
	for i, r := range s.Regs {
		t.regs[i] = queueRegs{num: r.Num, ready: r.Ready, desc: r.Desc, driver: r.Driver, device: r.Device}
		if err := t.queues[i].Restore(t.mem, s.Queues[i]); err != nil {
			return fmt.Errorf("%w: %s queue %d: %w", ErrState, t.id, i, err)
		}
	}
	t.status.Store(s.Status)
	t.isr.store(s.ISR)
	t.configGen.Store(s.ConfigGen)
	t.active = s.Active
	if s.ISR != 0 {
		// An interrupt raised just before the save may not have reached
		// the saved interrupt controller state (irqfd injection into the
		// I/O APIC is asynchronous): raise it again. A spurious one is
		// harmless, the driver reads the interrupt status.
		if err := t.trigger.Trigger(); err != nil {
			return fmt.Errorf("%w: %s: raising the pending interrupt: %w", ErrState, t.id, err)
		}
	}
	if t.active {
		return t.startDevice()
	}
	return nil
}

// startDevice activates the device on the queues as they are; t.mu is held.
func (t *Transport) startDevice() error {
	if err := t.dev.Activate(t.activateContext()); err != nil {
		return fmt.Errorf("activating %s: %w", t.id, err)
	}
	// Buffers the driver queued while the device was stopped are picked
	// up by a notification.
	for _, e := range t.notify {
		e.Signal()
	}
	return nil
}
