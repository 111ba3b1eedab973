package kvm

import (
	"testing"
	"unsafe"
)

// Sizes of the kernel ABI structs (x86-64, <linux/kvm.h>). A mismatch means
// the generated file no longer matches the ABI the ioctls expect.
func TestABISizes(t *testing.T) {
	cases := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"UserspaceMemoryRegion", unsafe.Sizeof(UserspaceMemoryRegion{}), 32},
		{"Regs", unsafe.Sizeof(Regs{}), 144},
		{"Segment", unsafe.Sizeof(Segment{}), 24},
		{"DTable", unsafe.Sizeof(DTable{}), 16},
		{"Sregs", unsafe.Sizeof(Sregs{}), 312},
		{"FPU", unsafe.Sizeof(FPU{}), 416},
		{"XSave", unsafe.Sizeof(XSave{}), 4096},
		{"XCR", unsafe.Sizeof(XCR{}), 16},
		{"XCRs", unsafe.Sizeof(XCRs{}), 392},
		{"MSREntry", unsafe.Sizeof(MSREntry{}), 16},
		{"msrsHeader", unsafe.Sizeof(msrsHeader{}), 8},
		{"LAPICState", unsafe.Sizeof(LAPICState{}), 1024},
		{"VCPUEvents", unsafe.Sizeof(VCPUEvents{}), 64},
		{"MPState", unsafe.Sizeof(MPState{}), 4},
		{"CPUIDEntry2", unsafe.Sizeof(CPUIDEntry2{}), 40},
		{"cpuid2Header", unsafe.Sizeof(cpuid2Header{}), 8},
		{"PITConfig", unsafe.Sizeof(PITConfig{}), 64},
		{"PITChannelState", unsafe.Sizeof(PITChannelState{}), 24},
		{"PITState2", unsafe.Sizeof(PITState2{}), 112},
		{"IRQChip", unsafe.Sizeof(IRQChip{}), 520},
		{"PICState", unsafe.Sizeof(PICState{}), 16},
		{"IOAPICState", unsafe.Sizeof(IOAPICState{}), 216},
		{"IRQLevel", unsafe.Sizeof(IRQLevel{}), 8},
		{"IRQFD", unsafe.Sizeof(IRQFD{}), 32},
		{"IOEventFD", unsafe.Sizeof(IOEventFD{}), 64},
		{"IRQRoutingEntry", unsafe.Sizeof(IRQRoutingEntry{}), 48},
		{"IRQRoutingIRQChipData", unsafe.Sizeof(IRQRoutingIRQChipData{}), 8},
		{"IRQRoutingMSIData", unsafe.Sizeof(IRQRoutingMSIData{}), 16},
		{"irqRoutingHeader", unsafe.Sizeof(irqRoutingHeader{}), 8},
		{"ClockData", unsafe.Sizeof(ClockData{}), 48},
		{"DebugRegs", unsafe.Sizeof(DebugRegs{}), 128},
		{"dirtyLog", unsafe.Sizeof(dirtyLog{}), 16},
		{"EnableCap", unsafe.Sizeof(EnableCap{}), 104},
		{"MSI", unsafe.Sizeof(MSI{}), 32},
		{"Translation", unsafe.Sizeof(Translation{}), 24},
		{"StatsHeader", unsafe.Sizeof(StatsHeader{}), 24},
		{"statsDescHeader", unsafe.Sizeof(statsDescHeader{}), 16},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("sizeof %s = %d, kernel ABI says %d", c.name, c.got, c.want)
		}
	}
}

// Offsets into struct kvm_run used by the Run accessors.
func TestRunOffsets(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"immediate_exit", runOffImmediateExit, 1},
		{"exit_reason", runOffExitReason, 8},
		{"io.port", runOffIOPort, 34},
		{"io.data_offset", runOffIODataOffset, 40},
		{"mmio.data", runOffMMIOData, 40},
		{"mmio.len", runOffMMIOLen, 48},
		{"mmio.is_write", runOffMMIOIsWrite, 52},
		{"internal.data", runOffInternalData, 40},
		{"emulation_failure.insn_bytes", runOffEmulInsnBytes, 49},
		{"system_event.type", runOffSystemEventType, 32},
		{"vcpu_events.triple_fault", vcpuEventsOffTripleFault, 28},
	} {
		if c.got != c.want {
			t.Errorf("offset of %s = %d, want %d", c.name, c.got, c.want)
		}
	}
}
