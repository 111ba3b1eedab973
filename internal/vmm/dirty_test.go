package vmm

import (
	"errors"
	"log/slog"
	"runtime"
	"testing"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/kvm"
	"github.com/vireo-vmm/vireo/internal/testutil"
)

// TestDirtyTracking runs a real-mode guest that writes two pages while
// a "device" writes a third through guestmem: CollectDirty reports
// exactly those three, then nothing, and tracking stops cleanly.
func TestDirtyTracking(t *testing.T) {
	testutil.RequireKVM(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sys, err := kvm.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	mem, err := guestmem.New([]guestmem.RegionSpec{{GPA: 0, Size: 1 << 20}, {GPA: 2 << 20, Size: 1 << 20}}, guestmem.Backing{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	m := &Machine{vm: vm, mem: mem, log: slog.Default()}
	for i, r := range mem.Regions() {
		if err := vm.SetUserMemoryRegion(uint32(i), 0, r.GPA, r.Size, r.HostAddr()); err != nil {
			t.Fatal(err)
		}
	}
	code := []byte{
		0xb0, 0x42, // mov al, 0x42
		0xa2, 0x10, 0x30, // mov [0x3010], al
		0xa2, 0x00, 0x90, // mov [0x9000], al
		0xf4, // hlt
	}
	if err := mem.WriteAt(code, 0x1000); err != nil { // before tracking: not reported
		t.Fatal(err)
	}
	if err := m.CollectDirty(m.NewDirtyBitmap()); !errors.Is(err, ErrDirtyTracking) {
		t.Fatalf("CollectDirty before Start: %v", err)
	}
	if err := m.StartDirtyTracking(); err != nil {
		t.Fatal(err)
	}
	if err := m.StartDirtyTracking(); !errors.Is(err, ErrDirtyTracking) {
		t.Fatalf("second Start: %v", err)
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
	sregs.Cs.Base, sregs.Cs.Selector, sregs.Ds.Base, sregs.Ds.Selector = 0, 0, 0, 0
	if err := cpu.SetSregs(sregs); err != nil {
		t.Fatal(err)
	}
	if err := cpu.SetRegs(kvm.Regs{Rip: 0x1000, Rflags: 2}); err != nil {
		t.Fatal(err)
	}
	if err := cpu.Run(); err != nil || cpu.RunData().ExitReason() != kvm.ExitHLT {
		t.Fatalf("KVM_RUN: %v, exit %d", err, cpu.RunData().ExitReason())
	}
	// A device write in the second region (a used-ring index, say).
	if err := mem.PutUint32(2<<20+5*4096+8, 7); err != nil {
		t.Fatal(err)
	}

	b := m.NewDirtyBitmap()
	if err := m.CollectDirty(b); err != nil {
		t.Fatal(err)
	}
	if b[0][0] != 1<<3|1<<9 || b[1][0] != 1<<5 {
		t.Fatalf("dirty: region 0 %#b, region 1 %#b; want pages 3, 9 and 5", b[0][0], b[1][0])
	}
	for i := range b {
		clear(b[i])
	}
	if err := m.CollectDirty(b); err != nil {
		t.Fatal(err)
	}
	if b[0][0] != 0 || b[1][0] != 0 {
		t.Fatalf("second collection: %#b %#b, want nothing", b[0][0], b[1][0])
	}
	m.markDirty(b, 0xfff, 2) // straddles pages 0 and 1
	m.markDirty(b, 2<<20+1<<20-1, 100)
	if b[0][0] != 3 || b[1][3] != 1<<63 {
		t.Fatalf("markDirty: %#b, %#x", b[0][0], b[1][3])
	}
	if err := m.StopDirtyTracking(); err != nil {
		t.Fatal(err)
	}
	if m.DirtyTracking() {
		t.Fatal("still tracking")
	}
	if err := m.StopDirtyTracking(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}
