package kvm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// VM is a KVM virtual machine file descriptor.
type VM struct {
	f         *os.File
	sys       *System
	runSize   int
	ringPage  int // page of a vCPU mapping with the coalesced ring; 0: none
	coalesced coalescedState
}

// Close closes the VM fd. vCPUs must be closed first.
func (vm *VM) Close() error { return vm.f.Close() }

func (vm *VM) fd() uintptr { return vm.f.Fd() }

// CheckExtension queries a capability on the VM fd (some are per-VM).
func (vm *VM) CheckExtension(cap int) int {
	r, err := ioctl(vm.fd(), ioctlCheckExtension, uintptr(cap))
	if err != nil {
		return 0
	}
	return int(r)
}

// SetUserMemoryRegion maps host memory at hostAddr as guest RAM.
func (vm *VM) SetUserMemoryRegion(slot uint32, flags uint32, gpa, size, hostAddr uint64) error {
	r := UserspaceMemoryRegion{Slot: slot, Flags: flags, Guest_phys_addr: gpa, Memory_size: size, Userspace_addr: hostAddr}
	if err := ioctlPtr(vm.fd(), ioctlSetUserMemoryRegion, ptr(&r)); err != nil {
		return fmt.Errorf("kvm: KVM_SET_USER_MEMORY_REGION slot %d (%#x+%#x): %w", slot, gpa, size, err)
	}
	return nil
}

// SetTSSAddr sets the three-page TSS region used for real-mode emulation.
func (vm *VM) SetTSSAddr(addr uint64) error {
	if _, err := ioctl(vm.fd(), ioctlSetTSSAddr, uintptr(addr)); err != nil {
		return fmt.Errorf("kvm: KVM_SET_TSS_ADDR: %w", err)
	}
	return nil
}

// SetIdentityMapAddr sets the identity map page for real-mode emulation.
func (vm *VM) SetIdentityMapAddr(addr uint64) error {
	a := addr
	if err := ioctlPtr(vm.fd(), ioctlSetIdentityMapAddr, ptr(&a)); err != nil {
		return fmt.Errorf("kvm: KVM_SET_IDENTITY_MAP_ADDR: %w", err)
	}
	return nil
}

// CreateIRQChip creates the in-kernel PIC, IOAPIC and local APICs.
func (vm *VM) CreateIRQChip() error {
	if _, err := ioctl(vm.fd(), ioctlCreateIRQChip, 0); err != nil {
		return fmt.Errorf("kvm: KVM_CREATE_IRQCHIP: %w", err)
	}
	return nil
}

// CreatePIT2 creates the in-kernel i8254 PIT.
func (vm *VM) CreatePIT2(flags uint32) error {
	c := PITConfig{Flags: flags}
	if err := ioctlPtr(vm.fd(), ioctlCreatePIT2, ptr(&c)); err != nil {
		return fmt.Errorf("kvm: KVM_CREATE_PIT2: %w", err)
	}
	return nil
}

// IRQLine sets the level of an irqchip input pin (GSI).
func (vm *VM) IRQLine(gsi uint32, level bool) error {
	l := IRQLevel{Irq: gsi}
	if level {
		l.Level = 1
	}
	if err := ioctlPtr(vm.fd(), ioctlIRQLine, ptr(&l)); err != nil {
		return fmt.Errorf("kvm: KVM_IRQ_LINE %d: %w", gsi, err)
	}
	return nil
}

// IRQFD binds an eventfd to a GSI: a write to the eventfd injects the interrupt.
func (vm *VM) IRQFD(eventfd int, gsi uint32) error {
	r := IRQFD{Fd: uint32(eventfd), Gsi: gsi}
	if err := ioctlPtr(vm.fd(), ioctlIRQFD, ptr(&r)); err != nil {
		return fmt.Errorf("kvm: KVM_IRQFD gsi %d: %w", gsi, err)
	}
	return nil
}

// IRQFDDeassign removes an irqfd binding.
func (vm *VM) IRQFDDeassign(eventfd int, gsi uint32) error {
	r := IRQFD{Fd: uint32(eventfd), Gsi: gsi, Flags: IRQFDFlagDeassign}
	if err := ioctlPtr(vm.fd(), ioctlIRQFD, ptr(&r)); err != nil {
		return fmt.Errorf("kvm: KVM_IRQFD deassign gsi %d: %w", gsi, err)
	}
	return nil
}

// IOEventFD makes guest writes of length n at addr signal eventfd without
// an exit. With datamatch set only writes of that value match. pio selects
// the port I/O space.
func (vm *VM) IOEventFD(eventfd int, addr uint64, n uint32, datamatch *uint64, pio, deassign bool) error {
	r := IOEventFD{Addr: addr, Len: n, Fd: int32(eventfd)}
	if datamatch != nil {
		r.Datamatch = *datamatch
		r.Flags |= IOEventFDFlagDatamatch
	}
	if pio {
		r.Flags |= IOEventFDFlagPIO
	}
	if deassign {
		r.Flags |= IOEventFDFlagDeassign
	}
	if err := ioctlPtr(vm.fd(), ioctlIOEventFD, ptr(&r)); err != nil {
		return fmt.Errorf("kvm: KVM_IOEVENTFD %#x: %w", addr, err)
	}
	return nil
}

// SetGSIRouting replaces the whole GSI routing table.
func (vm *VM) SetGSIRouting(entries []IRQRoutingEntry) error {
	if err := gsiRoutingIoctl(vm.fd(), entries); err != nil {
		return fmt.Errorf("kvm: KVM_SET_GSI_ROUTING (%d entries): %w", len(entries), err)
	}
	return nil
}

// SignalMSI injects one MSI.
func (vm *VM) SignalMSI(m MSI) error {
	if _, err := ioctlPtrRet(vm.fd(), ioctlSignalMSI, ptr(&m)); err != nil {
		return fmt.Errorf("kvm: KVM_SIGNAL_MSI: %w", err)
	}
	return nil
}

// Clock returns KVM_GET_CLOCK.
func (vm *VM) Clock() (ClockData, error) {
	var c ClockData
	if err := ioctlPtr(vm.fd(), ioctlGetClock, ptr(&c)); err != nil {
		return c, fmt.Errorf("kvm: KVM_GET_CLOCK: %w", err)
	}
	return c, nil
}

// SetClock sets KVM_SET_CLOCK.
func (vm *VM) SetClock(c ClockData) error {
	if err := ioctlPtr(vm.fd(), ioctlSetClock, ptr(&c)); err != nil {
		return fmt.Errorf("kvm: KVM_SET_CLOCK: %w", err)
	}
	return nil
}

// IRQChip returns the state of one in-kernel interrupt controller.
func (vm *VM) IRQChip(id uint32) (IRQChip, error) {
	c := IRQChip{Id: id}
	if err := ioctlPtr(vm.fd(), ioctlGetIRQChip, ptr(&c)); err != nil {
		return c, fmt.Errorf("kvm: KVM_GET_IRQCHIP %d: %w", id, err)
	}
	return c, nil
}

// SetIRQChip restores one in-kernel interrupt controller.
func (vm *VM) SetIRQChip(c IRQChip) error {
	if err := ioctlPtr(vm.fd(), ioctlSetIRQChip, ptr(&c)); err != nil {
		return fmt.Errorf("kvm: KVM_SET_IRQCHIP %d: %w", c.Id, err)
	}
	return nil
}

// PIT2 returns the in-kernel PIT state.
func (vm *VM) PIT2() (PITState2, error) {
	var s PITState2
	if err := ioctlPtr(vm.fd(), ioctlGetPIT2, ptr(&s)); err != nil {
		return s, fmt.Errorf("kvm: KVM_GET_PIT2: %w", err)
	}
	return s, nil
}

// SetPIT2 restores the in-kernel PIT state.
func (vm *VM) SetPIT2(s PITState2) error {
	if err := ioctlPtr(vm.fd(), ioctlSetPIT2, ptr(&s)); err != nil {
		return fmt.Errorf("kvm: KVM_SET_PIT2: %w", err)
	}
	return nil
}

// EnableCap enables a VM capability.
func (vm *VM) EnableCap(cap uint32, args ...uint64) error {
	c := EnableCap{Cap: cap}
	copy(c.Args[:], args)
	if err := ioctlPtr(vm.fd(), ioctlEnableCap, ptr(&c)); err != nil {
		return fmt.Errorf("kvm: KVM_ENABLE_CAP %d: %w", cap, err)
	}
	return nil
}

// DirtyLog fetches (and clears) the dirty bitmap of a slot into bitmap,
// which needs one bit per page of the slot.
func (vm *VM) DirtyLog(slot uint32, bitmap []uint64) error {
	if err := dirtyLogIoctl(vm.fd(), slot, bitmap); err != nil {
		return fmt.Errorf("kvm: KVM_GET_DIRTY_LOG slot %d: %w", slot, err)
	}
	return nil
}

// StatsFD returns the VM's binary statistics.
func (vm *VM) StatsFD() (*Stats, error) { return openStats(vm.fd()) }

// CreateVCPU creates vCPU id and maps its kvm_run area. Call it on the
// thread that will run the vCPU.
func (vm *VM) CreateVCPU(id int) (*VCPU, error) {
	r, err := ioctl(vm.fd(), ioctlCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_CREATE_VCPU %d: %w", id, err)
	}
	run, err := unix.Mmap(int(r), 0, vm.runSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(int(r))
		return nil, fmt.Errorf("kvm: mapping kvm_run of vCPU %d: %w", id, err)
	}
	c := &VCPU{f: os.NewFile(r, fmt.Sprintf("kvm-vcpu:%d", id)), ID: id, run: Run{b: run}, coalesced: &vm.coalesced}
	if p := vm.ringPage; p > 0 {
		c.ring = run[p*coalescedRingPage : (p+1)*coalescedRingPage]
	}
	return c, nil
}
