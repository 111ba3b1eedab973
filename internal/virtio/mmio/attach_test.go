package mmio

import (
	"errors"
	"testing"
)

type ioevent struct {
	fd        int
	addr      uint64
	n         uint32
	datamatch uint64
}

// fakeVM records registrations; failAt makes the n-th IOEventFD call fail.
type fakeVM struct {
	ioevents map[ioevent]bool
	irqfds   map[[2]int]bool
	calls    int
	failAt   int
	irqErr   error
}

func newFakeVM() *fakeVM {
	return &fakeVM{ioevents: map[ioevent]bool{}, irqfds: map[[2]int]bool{}, failAt: -1}
}

func (v *fakeVM) IOEventFD(fd int, addr uint64, n uint32, dm *uint64, pio, deassign bool) error {
	if pio || dm == nil {
		return errors.New("unexpected ioeventfd kind")
	}
	e := ioevent{fd, addr, n, *dm}
	if deassign {
		if !v.ioevents[e] {
			return errors.New("deassigning an unknown ioeventfd")
		}
		delete(v.ioevents, e)
		return nil
	}
	v.calls++
	if v.calls == v.failAt {
		return errors.New("injected failure")
	}
	v.ioevents[e] = true
	return nil
}

func (v *fakeVM) IRQFD(fd int, gsi uint32) error {
	if v.irqErr != nil {
		return v.irqErr
	}
	v.irqfds[[2]int{fd, int(gsi)}] = true
	return nil
}

func (v *fakeVM) IRQFDDeassign(fd int, gsi uint32) error {
	delete(v.irqfds, [2]int{fd, int(gsi)})
	return nil
}

func TestAttach(t *testing.T) {
	tr, _, _ := newTransport(t)
	vm := newFakeVM()
	const base = 0xd0001000
	if err := tr.Attach(vm, base, 6); err != nil {
		t.Fatal(err)
	}
	for i, e := range tr.notify {
		if !vm.ioevents[ioevent{e.FD(), base + 0x50, 4, uint64(i)}] {
			t.Errorf("no ioeventfd for queue %d", i)
		}
	}
	if len(vm.ioevents) != 2 || !vm.irqfds[[2]int{tr.irqfd.FD(), 6}] {
		t.Errorf("registrations: %v %v", vm.ioevents, vm.irqfds)
	}
	if err := tr.Attach(vm, base, 6); err == nil {
		t.Error("second Attach succeeded")
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if len(vm.ioevents) != 0 || len(vm.irqfds) != 0 {
		t.Errorf("left registered after Close: %v %v", vm.ioevents, vm.irqfds)
	}
	if err := tr.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	wr(tr, regQueueNotify, 0) // after Close: ignored, no panic
	wr(tr, regStatus, 1)
}

func TestAttachFailureUnwinds(t *testing.T) {
	for _, c := range []struct {
		name string
		vm   func() *fakeVM
	}{
		{"second ioeventfd", func() *fakeVM { v := newFakeVM(); v.failAt = 2; return v }},
		{"irqfd", func() *fakeVM { v := newFakeVM(); v.irqErr = errors.New("no irqfd"); return v }},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, _, _ := newTransport(t)
			vm := c.vm()
			if err := tr.Attach(vm, 0xd0000000, 5); err == nil {
				t.Fatal("Attach succeeded")
			}
			if len(vm.ioevents) != 0 || len(vm.irqfds) != 0 {
				t.Errorf("left registered: %v %v", vm.ioevents, vm.irqfds)
			}
		})
	}
}

// coalescingVM is a fakeVM that also buffers writes to zones.
type coalescingVM struct {
	*fakeVM
	zones map[[2]uint64]bool
	fail  bool
}

func (v *coalescingVM) CoalescedMMIO(addr uint64, size uint32, unregister bool) error {
	if v.fail {
		return errors.New("no coalesced MMIO")
	}
	z := [2]uint64{addr, uint64(size)}
	if unregister {
		if !v.zones[z] {
			return errors.New("unregistering an unknown zone")
		}
		delete(v.zones, z)
		return nil
	}
	v.zones[z] = true
	return nil
}

// TestAttachCoalescesACK registers InterruptACK as a coalesced zone where
// the VM can, removes it on Close, and attaches without it where it
// cannot.
func TestAttachCoalescesACK(t *testing.T) {
	const base = 0xd0002000
	for _, fail := range []bool{false, true} {
		tr, _, _ := newTransport(t)
		vm := &coalescingVM{fakeVM: newFakeVM(), zones: map[[2]uint64]bool{}, fail: fail}
		if err := tr.Attach(vm, base, 7); err != nil {
			t.Fatalf("fail=%v: %v", fail, err)
		}
		if got := vm.zones[[2]uint64{base + regInterruptACK, 4}]; got == fail || len(vm.zones) != map[bool]int{false: 1, true: 0}[fail] {
			t.Errorf("fail=%v: zones %v", fail, vm.zones)
		}
		if err := tr.Close(); err != nil {
			t.Fatalf("fail=%v: Close: %v", fail, err)
		}
		if len(vm.zones) != 0 {
			t.Errorf("fail=%v: left registered: %v", fail, vm.zones)
		}
	}
}
