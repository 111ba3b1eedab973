package mmio

import (
	"errors"
	"fmt"
)

// VM is what Attach needs of a KVM VM (*kvm.VM implements it).
type VM interface {
	IOEventFD(eventfd int, addr uint64, n uint32, datamatch *uint64, pio, deassign bool) error
	IRQFD(eventfd int, gsi uint32) error
	IRQFDDeassign(eventfd int, gsi uint32) error
}

// coalescer is implemented by a VM that can buffer guest writes to a
// zone instead of exiting for each (*kvm.VM, coalesced MMIO).
type coalescer interface {
	CoalescedMMIO(addr uint64, size uint32, unregister bool) error
}

type attachment struct {
	vm        VM
	base      uint64
	gsi       uint32
	n         int // ioeventfds registered
	irq       bool
	coalesced bool // InterruptACK writes are buffered by KVM
}

// Attach wires the transport into the VM for a window at base: one
// ioeventfd per queue on QueueNotify (4-byte writes whose value is the
// queue index), the interrupt eventfd as the irqfd of gsi, and, where
// the VM offers it, a coalesced zone on InterruptACK. The caller
// also inserts the transport on the MMIO bus at base.
func (t *Transport) Attach(vm VM, base uint64, gsi uint32) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.attached != nil {
		return fmt.Errorf("mmio: %s is already attached at %#x", t.id, t.attached.base)
	}
	a := &attachment{vm: vm, base: base, gsi: gsi}
	for i, e := range t.notify {
		dm := uint64(i)
		if err := vm.IOEventFD(e.FD(), base+regQueueNotify, 4, &dm, false, false); err != nil {
			t.detach(a)
			return fmt.Errorf("mmio: %s queue %d notifier: %w", t.id, i, err)
		}
		a.n++
	}
	if err := vm.IRQFD(t.irqfd.FD(), gsi); err != nil {
		t.detach(a)
		return fmt.Errorf("mmio: %s interrupt: %w", t.id, err)
	}
	a.irq = true
	// The driver's InterruptACK write needs no answer, so where KVM can
	// buffer it the guest does not exit to Vireo for it (see isrReg). A
	// VM that cannot just takes the exit.
	if c, ok := vm.(coalescer); ok && c.CoalescedMMIO(base+regInterruptACK, 4, false) == nil {
		a.coalesced = true
	}
	t.attached = a
	return nil
}

// detach undoes what a registered; t.mu is held.
func (t *Transport) detach(a *attachment) error {
	var errs []error
	for i := 0; i < a.n; i++ {
		dm := uint64(i)
		if err := a.vm.IOEventFD(t.notify[i].FD(), a.base+regQueueNotify, 4, &dm, false, true); err != nil {
			errs = append(errs, err)
		}
	}
	if a.irq {
		if err := a.vm.IRQFDDeassign(t.irqfd.FD(), a.gsi); err != nil {
			errs = append(errs, err)
		}
	}
	if a.coalesced {
		if err := a.vm.(coalescer).CoalescedMMIO(a.base+regInterruptACK, 4, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close resets the device (stopping its workers), unregisters the
// eventfds from the VM and closes them. Call it before the VM and guest
// memory are released; it is safe to call twice.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	t.reset()
	var err error
	if t.attached != nil {
		err = t.detach(t.attached)
		t.attached = nil
	}
	t.closeFDs()
	return err
}

func (t *Transport) closeFDs() {
	for _, e := range t.notify {
		e.Close()
	}
	t.notify = nil
	if t.irqfd != nil {
		t.irqfd.Close()
		t.irqfd = nil
	}
}
