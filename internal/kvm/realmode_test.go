package kvm

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/testutil"
)

// openVM opens KVM and creates a VM for a test that runs guest code. It
// locks the test's goroutine to its thread (a vCPU must run on the
// thread that created it); everything is released when the test ends.
func openVM(t *testing.T) (*System, *VM) {
	t.Helper()
	testutil.RequireKVM(t)
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	sys, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Close() })
	return sys, vm
}

// guestRAM maps size bytes of anonymous memory for guest RAM with code
// copied to 0x1000, where realModeVCPU starts.
func guestRAM(t *testing.T, size int, code []byte) []byte {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	copy(mem[0x1000:], code)
	return mem
}

// realModeVCPU creates vCPU 0 with the host's supported CPUID, in real
// mode with flat code and data segments, about to run at 0x1000. It is
// closed before the VM.
func realModeVCPU(t *testing.T, sys *System, vm *VM) *VCPU {
	t.Helper()
	cpu, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cpu.Close() })
	cpuid, err := sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	if err := cpu.SetCPUID(cpuid); err != nil {
		t.Fatal(err)
	}
	sregs, err := cpu.Sregs()
	if err != nil {
		t.Fatal(err)
	}
	sregs.Cs.Base, sregs.Cs.Selector = 0, 0
	sregs.Ds.Base, sregs.Ds.Selector = 0, 0
	if err := cpu.SetSregs(sregs); err != nil {
		t.Fatal(err)
	}
	if err := cpu.SetRegs(Regs{Rip: 0x1000, Rflags: 2}); err != nil {
		t.Fatal(err)
	}
	return cpu
}
