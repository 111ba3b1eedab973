package kvm

import "testing"

// TestDirtyLog runs a real-mode guest that writes two pages of a slot
// registered with KVM_MEM_LOG_DIRTY_PAGES: KVM_GET_DIRTY_LOG reports
// exactly those pages (and the page of the code it fetched is not
// written), and a second fetch finds the bitmap cleared.
func TestDirtyLog(t *testing.T) {
	sys, vm := openVM(t)
	const size = 0x10000 // 16 pages
	mem := guestRAM(t, size, []byte{
		0xb0, 0x42, // mov al, 0x42
		0xa2, 0x10, 0x30, // mov [0x3010], al
		0xa2, 0x00, 0x90, // mov [0x9000], al
		0xf4, // hlt
	})
	// Registered without logging first, then the flag is switched on in
	// place, as a running VM's slots are.
	if err := vm.SetUserMemoryRegion(0, 0, 0, size, hostAddr(mem)); err != nil {
		t.Fatal(err)
	}
	if err := vm.SetUserMemoryRegion(0, MemLogDirtyPages, 0, size, hostAddr(mem)); err != nil {
		t.Fatal(err)
	}
	cpu := realModeVCPU(t, sys, vm)
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
