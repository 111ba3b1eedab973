package kvm

import (
	"runtime"
	"testing"

	"github.com/vireo-vmm/vireo/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestDirtyLog runs a real-mode guest that writes two pages of a slot
// registered with KVM_MEM_LOG_DIRTY_PAGES: KVM_GET_DIRTY_LOG reports
// exactly those pages (and the page of the code it fetched is not
// written), and a second fetch finds the bitmap cleared.
func TestDirtyLog(t *testing.T) {
	testutil.RequireKVM(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
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
	const size = 0x10000 // 16 pages
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	code := []byte{
		0xb0, 0x42, // mov al, 0x42
		0xa2, 0x10, 0x30, // mov [0x3010], al
		0xa2, 0x00, 0x90, // mov [0x9000], al
		0xf4, // hlt
	}
	copy(mem[0x1000:], code)
	// Registered without logging first, then the flag is switched on in
	// place, as a running VM's slots are.
	if err := vm.SetUserMemoryRegion(0, 0, 0, size, hostAddr(mem)); err != nil {
		t.Fatal(err)
	}
	if err := vm.SetUserMemoryRegion(0, MemLogDirtyPages, 0, size, hostAddr(mem)); err != nil {
		t.Fatal(err)
	}
	cpu, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
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
	if err := cpu.Run(); err != nil {
		t.Fatalf("KVM_RUN: %v", err)
	}
	if r := cpu.RunData().ExitReason(); r != ExitHLT {
		t.Fatalf("exit %d, want HLT", r)
	}
	if mem[0x3010] != 0x42 || mem[0x9000] != 0x42 {
		t.Fatal("the guest's writes did not land")
	}
	bitmap := make([]uint64, 1)
	if err := vm.DirtyLog(0, bitmap); err != nil {
		t.Fatal(err)
	}
	if want := uint64(1<<3 | 1<<9); bitmap[0] != want {
		t.Fatalf("dirty bitmap %#b, want %#b (pages 3 and 9)", bitmap[0], want)
	}
	if err := vm.DirtyLog(0, bitmap); err != nil {
		t.Fatal(err)
	}
	if bitmap[0] != 0 {
		t.Fatalf("dirty bitmap %#b after a fetch, want it cleared", bitmap[0])
	}
	// Logging off again: the ioctl refuses a slot that does not log.
	if err := vm.SetUserMemoryRegion(0, 0, 0, size, hostAddr(mem)); err != nil {
		t.Fatal(err)
	}
	if err := vm.DirtyLog(0, bitmap); err == nil {
		t.Fatal("KVM_GET_DIRTY_LOG succeeded on a slot without dirty logging")
	}
}
