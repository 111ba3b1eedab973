package kvm

import (
	"testing"
	"unsafe"
)

func TestCoalescedABI(t *testing.T) {
	if s := unsafe.Sizeof(coalescedZone{}); s != 16 {
		t.Errorf("kvm_coalesced_mmio_zone is %d bytes, want 16", s)
	}
	// _IOW(KVMIO, nr, 16 bytes)
	for nr, req := range map[uintptr]uintptr{0x67: ioctlRegisterCoalescedMMIO, 0x68: ioctlUnregisterCoalescedMMIO} {
		if want := uintptr(1<<30 | 16<<16 | 0xae<<8 | nr); req != want {
			t.Errorf("ioctl %#x = %#x, want %#x", nr, req, want)
		}
	}
	if coalescedRingMax != 170 {
		t.Errorf("ring holds %d entries, want 170 (KVM_COALESCED_MMIO_MAX on 4 KiB pages)", coalescedRingMax)
	}
}

// writes records replayed writes.
type writes []struct {
	addr uint64
	val  byte
}

func (w *writes) Write(addr uint64, data []byte) bool {
	*w = append(*w, struct {
		addr uint64
		val  byte
	}{addr, data[0]})
	return true
}

// TestCoalescedMMIO runs real-mode code that writes twice into a
// coalesced zone and then once to a plain MMIO address: KVM exits only
// for the last, and the ring replays the first two, in order.
func TestCoalescedMMIO(t *testing.T) {
	sys, vm := openVM(t)
	if sys.CheckExtension(CapCoalescedMMIO) == 0 {
		t.Skip("no coalesced MMIO on this host")
	}
	mem := guestRAM(t, 0x8000, []byte{
		0xb0, 0x11, 0xa2, 0x04, 0x80, // mov al, 0x11; mov [0x8004], al
		0xb0, 0x22, 0xa2, 0x04, 0x80, // mov al, 0x22; mov [0x8004], al
		0xb0, 0x33, 0xa2, 0x00, 0x90, // mov al, 0x33; mov [0x9000], al
		0xf4, // hlt
	})
	if err := vm.SetUserMemoryRegion(0, 0, 0, 0x8000, hostAddr(mem)); err != nil {
		t.Fatal(err)
	}
	if err := vm.CoalescedMMIO(0x8000, 16, false); err != nil {
		t.Fatal(err)
	}
	cpu := realModeVCPU(t, sys, vm)
	var mmio, pio writes
	if err := cpu.Run(); err != nil {
		t.Fatal(err)
	}
	n := cpu.DrainCoalesced(&mmio, &pio)
	if r := cpu.RunData().ExitReason(); r != ExitMMIO {
		t.Fatalf("exit %d, want MMIO", r)
	}
	if addr, data, w := cpu.RunData().MMIO(); addr != 0x9000 || !w || data[0] != 0x33 {
		t.Fatalf("MMIO exit at %#x (%v, write %v), want the write to 0x9000", addr, data, w)
	}
	if n != 2 || len(mmio) != 2 || len(pio) != 0 || mmio[0].addr != 0x8004 || mmio[0].val != 0x11 || mmio[1].val != 0x22 {
		t.Fatalf("replayed %d: mmio %+v pio %+v, want 0x11 then 0x22 at 0x8004", n, mmio, pio)
	}
	if n := cpu.DrainCoalesced(&mmio, &pio); n != 0 {
		t.Errorf("second drain replayed %d", n)
	}
	if err := vm.CoalescedMMIO(0x8000, 16, true); err != nil {
		t.Fatal(err)
	}
}
