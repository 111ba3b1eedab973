package kvm

import (
	"errors"
	"testing"

	"github.com/vireo-vmm/vireo/internal/testutil"
)

// TestRealModeGuest runs a few real-mode instructions on a real vCPU: the
// guest writes a byte to a port, touches MMIO and halts, and every exit is
// decoded through the Run view.
func TestRealModeGuest(t *testing.T) {
	sys, vm := openVM(t)
	for _, c := range []int{CapUserMemory, CapImmediateExit, CapIRQChip, CapIRQFD, CapIOEventFD} {
		if sys.CheckExtension(c) == 0 {
			t.Fatalf("capability %d missing", c)
		}
	}
	cpuid, err := sys.SupportedCPUID()
	if err != nil || len(cpuid) == 0 {
		t.Fatalf("SupportedCPUID: %v (%d entries)", err, len(cpuid))
	}
	msrs, err := sys.MSRIndexList()
	if err != nil || len(msrs) == 0 {
		t.Fatalf("MSRIndexList: %v (%d)", err, len(msrs))
	}
	code := []byte{
		0xb0, 0x42, // mov al, 0x42
		0xe6, 0x10, // out 0x10, al
		0xa2, 0x00, 0x80, // mov [0x8000], al  (0x8000 is outside the memory slot: MMIO)
		0xf4, // hlt
	}
	mem := guestRAM(t, 0x10000, code)
	if err := vm.SetUserMemoryRegion(0, 0, 0, 0x8000, hostAddr(mem)); err != nil {
		t.Fatal(err)
	}
	cpu := realModeVCPU(t, sys, vm)
	run := cpu.RunData()

	step := func() uint32 {
		t.Helper()
		if err := cpu.Run(); err != nil {
			t.Fatalf("KVM_RUN: %v", err)
		}
		return run.ExitReason()
	}
	if r := step(); r != ExitIO {
		t.Fatalf("exit %d, want IO", r)
	}
	dir, port, size, data, ok := run.IO()
	if !ok || dir != ExitIOOut || port != 0x10 || size != 1 || data[0] != 0x42 {
		t.Fatalf("IO exit: dir=%d port=%#x size=%d data=%v ok=%v", dir, port, size, data, ok)
	}
	if r := step(); r != ExitMMIO {
		t.Fatalf("exit %d, want MMIO", r)
	}
	addr, mdata, isWrite := run.MMIO()
	if addr != 0x8000 || !isWrite || len(mdata) != 1 || mdata[0] != 0x42 {
		t.Fatalf("MMIO exit: addr=%#x data=%v write=%v", addr, mdata, isWrite)
	}
	if r := step(); r != ExitHLT {
		t.Fatalf("exit %d, want HLT", r)
	}
	regs, err := cpu.Regs()
	if err != nil {
		t.Fatal(err)
	}
	if regs.Rip != 0x1000+uint64(len(code)) {
		t.Errorf("rip = %#x after hlt", regs.Rip)
	}

	// immediate_exit makes KVM_RUN return EINTR at once.
	run.Kick()
	if err := cpu.Run(); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("with immediate_exit: %v, want ErrInterrupted", err)
	}
	run.ClearKick()

	// State getters used by snapshots all work.
	if _, err := cpu.FPU(); err != nil {
		t.Error(err)
	}
	if _, err := cpu.VCPUEvents(); err != nil {
		t.Error(err)
	}
	if _, err := cpu.MPState(); err != nil {
		t.Error(err)
	}
	if _, err := cpu.DebugRegs(); err != nil {
		t.Error(err)
	}
	e := []MSREntry{{Index: 0x10}} // IA32_TSC
	if err := cpu.MSRs(e); err != nil {
		t.Error(err)
	}
}

func TestIRQChipAndStats(t *testing.T) {
	testutil.RequireKVM(t)
	sys, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := vm.SetTSSAddr(0xfffbd000); err != nil {
		t.Fatal(err)
	}
	if err := vm.CreateIRQChip(); err != nil {
		t.Fatal(err)
	}
	if err := vm.CreatePIT2(0); err != nil {
		t.Fatal(err)
	}
	if err := vm.IRQLine(4, true); err != nil {
		t.Fatal(err)
	}
	if err := vm.IRQLine(4, false); err != nil {
		t.Fatal(err)
	}
	chip, err := vm.IRQChip(IRQChipIOAPIC)
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.SetIRQChip(chip); err != nil {
		t.Fatal(err)
	}
	pit, err := vm.PIT2()
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.SetPIT2(pit); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Clock(); err != nil {
		t.Fatal(err)
	}
	if sys.CheckExtension(CapBinaryStatsFD) != 0 {
		st, err := vm.StatsFD()
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		vals, err := st.Read()
		if err != nil || len(vals) == 0 {
			t.Fatalf("stats: %v, %d values", err, len(vals))
		}
		all, err := st.ReadAll()
		if err != nil || len(all) != len(vals) {
			t.Fatalf("ReadAll: %v, %d stats, Read has %d", err, len(all), len(vals))
		}
		for _, s := range all {
			if s.Type() == "" || len(s.Values) != s.Size {
				t.Errorf("stat %+v: type %q, %d values", s.StatDesc, s.Type(), len(s.Values))
			}
		}
	}
}
