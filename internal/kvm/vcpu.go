package kvm

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/rtsyscall"
)

// VCPU is a KVM virtual CPU and its kvm_run mapping.
type VCPU struct {
	f   *os.File
	ID  int
	run Run
	// ring is the coalesced-write ring inside the mapping (nil when the
	// host has none), shared with the other vCPUs under coalesced.mu.
	ring      []byte
	coalesced *coalescedState
}

// Close unmaps kvm_run and closes the vCPU fd.
func (c *VCPU) Close() error {
	if c.run.b != nil {
		c.ring = nil
		unix.Munmap(c.run.b)
		c.run.b = nil
	}
	return c.f.Close()
}

func (c *VCPU) fd() uintptr { return c.f.Fd() }

// RunData is the shared kvm_run area.
func (c *VCPU) RunData() *Run { return &c.run }

// ErrInterrupted is returned by Run when KVM_RUN returned EINTR (a signal
// or immediate_exit); the caller should process its control messages.
var ErrInterrupted = errors.New("kvm: KVM_RUN interrupted")

// Run enters the guest until the next exit. It never retries EINTR: an
// interrupted run returns ErrInterrupted so kicks reach the run loop.
// It does not allocate.
func (c *VCPU) Run() error {
	_, _, e := rtsyscall.Blocking6(unix.SYS_IOCTL, c.fd(), ioctlRun, 0, 0, 0, 0)
	switch e {
	case 0:
		return nil
	case unix.EINTR, unix.EAGAIN:
		return ErrInterrupted
	}
	return e
}

// Regs returns the general-purpose registers.
func (c *VCPU) Regs() (Regs, error) {
	var r Regs
	err := c.get(ioctlGetRegs, ptr(&r), "KVM_GET_REGS")
	return r, err
}

// SetRegs sets the general-purpose registers.
func (c *VCPU) SetRegs(r Regs) error { return c.set(ioctlSetRegs, ptr(&r), "KVM_SET_REGS") }

// Sregs returns the special registers.
func (c *VCPU) Sregs() (Sregs, error) {
	var r Sregs
	err := c.get(ioctlGetSregs, ptr(&r), "KVM_GET_SREGS")
	return r, err
}

// SetSregs sets the special registers.
func (c *VCPU) SetSregs(r Sregs) error { return c.set(ioctlSetSregs, ptr(&r), "KVM_SET_SREGS") }

// FPU returns the legacy FPU state.
func (c *VCPU) FPU() (FPU, error) {
	var r FPU
	err := c.get(ioctlGetFPU, ptr(&r), "KVM_GET_FPU")
	return r, err
}

// SetFPU sets the legacy FPU state.
func (c *VCPU) SetFPU(r FPU) error { return c.set(ioctlSetFPU, ptr(&r), "KVM_SET_FPU") }

// XSave returns the XSAVE area (legacy 4 KiB form).
func (c *VCPU) XSave() (XSave, error) {
	var r XSave
	err := c.get(ioctlGetXSave, ptr(&r), "KVM_GET_XSAVE")
	return r, err
}

// SetXSave restores the XSAVE area.
func (c *VCPU) SetXSave(r XSave) error { return c.set(ioctlSetXSave, ptr(&r), "KVM_SET_XSAVE") }

// XCRs returns the extended control registers.
func (c *VCPU) XCRs() (XCRs, error) {
	var r XCRs
	err := c.get(ioctlGetXCRs, ptr(&r), "KVM_GET_XCRS")
	return r, err
}

// SetXCRs sets the extended control registers.
func (c *VCPU) SetXCRs(r XCRs) error { return c.set(ioctlSetXCRs, ptr(&r), "KVM_SET_XCRS") }

// LAPIC returns the local APIC register page.
func (c *VCPU) LAPIC() (LAPICState, error) {
	var r LAPICState
	err := c.get(ioctlGetLAPIC, ptr(&r), "KVM_GET_LAPIC")
	return r, err
}

// SetLAPIC sets the local APIC register page.
func (c *VCPU) SetLAPIC(r LAPICState) error { return c.set(ioctlSetLAPIC, ptr(&r), "KVM_SET_LAPIC") }

// VCPUEvents returns pending exceptions, interrupts, NMIs and SMIs.
func (c *VCPU) VCPUEvents() (VCPUEvents, error) {
	var r VCPUEvents
	err := c.get(ioctlGetVCPUEvents, ptr(&r), "KVM_GET_VCPU_EVENTS")
	return r, err
}

// SetVCPUEvents restores pending events.
func (c *VCPU) SetVCPUEvents(r VCPUEvents) error {
	return c.set(ioctlSetVCPUEvents, ptr(&r), "KVM_SET_VCPU_EVENTS")
}

// MPState returns the multiprocessing state.
func (c *VCPU) MPState() (MPState, error) {
	var r MPState
	err := c.get(ioctlGetMPState, ptr(&r), "KVM_GET_MP_STATE")
	return r, err
}

// SetMPState sets the multiprocessing state.
func (c *VCPU) SetMPState(r MPState) error {
	return c.set(ioctlSetMPState, ptr(&r), "KVM_SET_MP_STATE")
}

// DebugRegs returns the debug registers.
func (c *VCPU) DebugRegs() (DebugRegs, error) {
	var r DebugRegs
	err := c.get(ioctlGetDebugRegs, ptr(&r), "KVM_GET_DEBUGREGS")
	return r, err
}

// SetDebugRegs sets the debug registers.
func (c *VCPU) SetDebugRegs(r DebugRegs) error {
	return c.set(ioctlSetDebugRegs, ptr(&r), "KVM_SET_DEBUGREGS")
}

// SetCPUID sets the guest CPUID table.
func (c *VCPU) SetCPUID(entries []CPUIDEntry2) error {
	if err := setCPUIDIoctl(c.fd(), entries); err != nil {
		return fmt.Errorf("kvm: KVM_SET_CPUID2 on vCPU %d: %w", c.ID, err)
	}
	return nil
}

// CPUID returns the guest CPUID table as KVM holds it.
func (c *VCPU) CPUID() ([]CPUIDEntry2, error) {
	e, err := cpuidIoctl(c.fd(), ioctlGetCPUID2, 256)
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_GET_CPUID2 on vCPU %d: %w", c.ID, err)
	}
	return e, nil
}

// MSRs reads the MSRs named by the Index fields of entries, in place.
func (c *VCPU) MSRs(entries []MSREntry) error {
	n, err := msrsIoctl(c.fd(), ioctlGetMSRs, entries)
	if err != nil {
		return fmt.Errorf("kvm: KVM_GET_MSRS on vCPU %d: %w", c.ID, err)
	}
	if n != len(entries) {
		return fmt.Errorf("kvm: KVM_GET_MSRS on vCPU %d: read %d of %d (first failing MSR %#x)", c.ID, n, len(entries), entries[n].Index)
	}
	return nil
}

// SetMSRs writes MSRs.
func (c *VCPU) SetMSRs(entries []MSREntry) error {
	n, err := msrsIoctl(c.fd(), ioctlSetMSRs, entries)
	if err != nil {
		return fmt.Errorf("kvm: KVM_SET_MSRS on vCPU %d: %w", c.ID, err)
	}
	if n != len(entries) {
		return fmt.Errorf("kvm: KVM_SET_MSRS on vCPU %d: wrote %d of %d (MSR %#x refused)", c.ID, n, len(entries), entries[n].Index)
	}
	return nil
}

// SetSignalMask sets the signal mask in effect while the vCPU runs in the
// guest. mask is a bitmask of signals 1..64 (bit n-1 for signal n).
func (c *VCPU) SetSignalMask(mask uint64) error {
	if err := signalMaskIoctl(c.fd(), mask); err != nil {
		return fmt.Errorf("kvm: KVM_SET_SIGNAL_MASK: %w", err)
	}
	return nil
}

// KVMClockCtrl tells the guest it was paused (avoids soft-lockup warnings).
func (c *VCPU) KVMClockCtrl() error {
	if _, err := ioctl(c.fd(), ioctlKVMClockCtrl, 0); err != nil {
		return fmt.Errorf("kvm: KVM_KVMCLOCK_CTRL: %w", err)
	}
	return nil
}

// TSCKHz returns the vCPU's TSC frequency.
func (c *VCPU) TSCKHz() (uint32, error) {
	r, err := ioctl(c.fd(), ioctlGetTSCKHz, 0)
	if err != nil {
		return 0, fmt.Errorf("kvm: KVM_GET_TSC_KHZ: %w", err)
	}
	return uint32(r), nil
}

// SetTSCKHz sets the vCPU's TSC frequency (needs TSC scaling).
func (c *VCPU) SetTSCKHz(khz uint32) error {
	if _, err := ioctl(c.fd(), ioctlSetTSCKHz, uintptr(khz)); err != nil {
		return fmt.Errorf("kvm: KVM_SET_TSC_KHZ: %w", err)
	}
	return nil
}

// StatsFD returns the vCPU's binary statistics.
func (c *VCPU) StatsFD() (*Stats, error) { return openStats(c.fd()) }

func (c *VCPU) get(req uintptr, p ptrArg, name string) error {
	if err := ioctlPtr(c.fd(), req, p); err != nil {
		return fmt.Errorf("kvm: %s on vCPU %d: %w", name, c.ID, err)
	}
	return nil
}

func (c *VCPU) set(req uintptr, p ptrArg, name string) error { return c.get(req, p, name) }

// Translate converts a guest virtual address using the vCPU's current page tables.
func (c *VCPU) Translate(gva uint64) (gpa uint64, ok bool, err error) {
	t := Translation{Linear_address: gva}
	if err := ioctlPtr(c.fd(), ioctlTranslate, ptr(&t)); err != nil {
		return 0, false, fmt.Errorf("kvm: KVM_TRANSLATE %#x: %w", gva, err)
	}
	return t.Physical_address, t.Valid != 0, nil
}
