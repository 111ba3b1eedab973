package vcpu

import (
	"fmt"

	"github.com/vireo-vmm/vireo/internal/kvm"
)

// State is the complete architectural state of one vCPU as plain data,
// for snapshots and migration. Save it with the vCPU paused, on its own
// thread (VCPU.Do).
type State struct {
	ID        int
	CPUID     []kvm.CPUIDEntry2
	MPState   kvm.MPState
	Regs      kvm.Regs
	Sregs     kvm.Sregs
	XSave     kvm.XSave
	XCRs      kvm.XCRs
	DebugRegs kvm.DebugRegs
	LAPIC     kvm.LAPICState
	MSRs      []kvm.MSREntry
	Events    kvm.VCPUEvents
	TSCKHz    uint32
}

// SaveState reads every piece of vCPU state. msrs lists the MSR indices
// to save (x86.SnapshotMSRIndices of KVM's MSR index list).
func SaveState(c *kvm.VCPU, msrs []uint32) (*State, error) {
	s := &State{ID: c.ID}
	var err error
	if s.CPUID, err = c.CPUID(); err != nil {
		return nil, err
	}
	if s.MPState, err = c.MPState(); err != nil {
		return nil, err
	}
	if s.Regs, err = c.Regs(); err != nil {
		return nil, err
	}
	if s.Sregs, err = c.Sregs(); err != nil {
		return nil, err
	}
	if s.XSave, err = c.XSave(); err != nil {
		return nil, err
	}
	if s.XCRs, err = c.XCRs(); err != nil {
		return nil, err
	}
	if s.DebugRegs, err = c.DebugRegs(); err != nil {
		return nil, err
	}
	if s.LAPIC, err = c.LAPIC(); err != nil {
		return nil, err
	}
	s.MSRs = make([]kvm.MSREntry, len(msrs))
	for i, idx := range msrs {
		s.MSRs[i].Index = idx
	}
	if err = c.MSRs(s.MSRs); err != nil {
		return nil, err
	}
	if s.Events, err = c.VCPUEvents(); err != nil {
		return nil, err
	}
	if khz, err := c.TSCKHz(); err == nil {
		s.TSCKHz = khz
	}
	return s, nil
}

// RestoreState writes s into a freshly created vCPU, in the order KVM
// needs: CPUID first (it shapes what the other calls accept), the MSRs
// after the LAPIC (TSC deadline), the events last.
func RestoreState(c *kvm.VCPU, s *State) error {
	if s.ID != c.ID {
		return fmt.Errorf("vcpu: restoring the state of vCPU %d into vCPU %d", s.ID, c.ID)
	}
	if err := c.SetCPUID(s.CPUID); err != nil {
		return err
	}
	if err := c.SetMPState(s.MPState); err != nil {
		return err
	}
	if err := c.SetRegs(s.Regs); err != nil {
		return err
	}
	if err := c.SetSregs(s.Sregs); err != nil {
		return err
	}
	if err := c.SetXSave(s.XSave); err != nil {
		return err
	}
	if err := c.SetXCRs(s.XCRs); err != nil {
		return err
	}
	if err := c.SetDebugRegs(s.DebugRegs); err != nil {
		return err
	}
	if err := c.SetLAPIC(s.LAPIC); err != nil {
		return err
	}
	if err := c.SetMSRs(s.MSRs); err != nil {
		return err
	}
	if err := c.SetVCPUEvents(s.Events); err != nil {
		return err
	}
	// Tell the guest's kvmclock it was paused; hosts without the
	// capability simply do not get the soft-lockup hint.
	_ = c.KVMClockCtrl()
	return nil
}
