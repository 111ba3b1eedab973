package vmm

import (
	"fmt"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/devices/legacy"
	"github.com/vireo-vmm/vireo/internal/kvm"
	"github.com/vireo-vmm/vireo/internal/vcpu"
)

// PlatformState is the VM-wide state KVM holds plus the legacy devices,
// as plain data.
type PlatformState struct {
	PICMaster kvm.IRQChip
	PICSlave  kvm.IRQChip
	IOAPIC    kvm.IRQChip
	PIT       kvm.PITState2
	Clock     kvm.ClockData
	Serial    legacy.SerialState
	I8042     legacy.I8042State
	RTC       legacy.RTCState
}

// savePlatform reads the irqchips, the PIT, the KVM clock and the legacy
// devices. The machine must be paused.
func (m *Machine) savePlatform() (*PlatformState, error) {
	st := &PlatformState{}
	var err error
	for _, c := range []struct {
		id  uint32
		dst *kvm.IRQChip
	}{{kvm.IRQChipPICMaster, &st.PICMaster}, {kvm.IRQChipPICSlave, &st.PICSlave}, {kvm.IRQChipIOAPIC, &st.IOAPIC}} {
		if *c.dst, err = m.vm.IRQChip(c.id); err != nil {
			return nil, err
		}
	}
	if st.PIT, err = m.vm.PIT2(); err != nil {
		return nil, err
	}
	if st.Clock, err = m.vm.Clock(); err != nil {
		return nil, err
	}
	m.serial.Flush()
	st.Serial = m.serial.State()
	st.I8042 = m.i8042.State()
	st.RTC = m.rtc.State()
	return st, nil
}

// restorePlatform writes saved platform state into a freshly built machine
// whose vCPUs have not run.
func (m *Machine) restorePlatform(st *PlatformState) error {
	for _, c := range []kvm.IRQChip{st.PICMaster, st.PICSlave, st.IOAPIC} {
		if err := m.vm.SetIRQChip(c); err != nil {
			return err
		}
	}
	if err := m.vm.SetPIT2(st.PIT); err != nil {
		return err
	}
	// KVM_SET_CLOCK takes only the clock value (and, with
	// KVM_CLOCK_REALTIME, the host time it was read at); flags the host
	// sets on read must not be passed back.
	clock := kvm.ClockData{Clock: st.Clock.Clock}
	if err := m.vm.SetClock(clock); err != nil {
		return err
	}
	if err := m.serial.Restore(st.Serial); err != nil {
		return fmt.Errorf("serial: %w", err)
	}
	if err := m.i8042.Restore(st.I8042); err != nil {
		return fmt.Errorf("i8042: %w", err)
	}
	if err := m.rtc.Restore(st.RTC); err != nil {
		return fmt.Errorf("rtc: %w", err)
	}
	return nil
}

// saveVCPUs reads every vCPU's state on its own thread. The machine must
// be paused.
func (m *Machine) saveVCPUs() ([]*vcpu.State, error) {
	list, err := m.sys.MSRIndexList()
	if err != nil {
		return nil, err
	}
	msrs := x86.SnapshotMSRIndices(list)
	out := make([]*vcpu.State, len(m.vcpus))
	for i, v := range m.vcpus {
		if err := v.Do(func(c *kvm.VCPU) (err error) {
			out[i], err = vcpu.SaveState(c, msrs)
			return err
		}); err != nil {
			return nil, fmt.Errorf("saving vCPU %d: %w", i, err)
		}
	}
	return out, nil
}
