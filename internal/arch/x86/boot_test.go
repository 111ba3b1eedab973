package x86

import (
	"errors"
	"testing"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

func newMem(t *testing.T, size uint64) *guestmem.Memory {
	t.Helper()
	mem, err := guestmem.New(RAMRegions(size), guestmem.Backing{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	return mem
}

func readU64(t *testing.T, mem *guestmem.Memory, gpa uint64) uint64 {
	t.Helper()
	v, err := mem.Uint64(gpa)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWriteBootGDT(t *testing.T) {
	mem := newMem(t, 64<<20)
	if err := mem.PutUint64(IDTStart, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	if err := WriteBootGDT(mem); err != nil {
		t.Fatal(err)
	}
	for i, want := range []uint64{0, 0x00af9b000000ffff, 0x00cf93000000ffff, 0x008f8b000000ffff} {
		if got := readU64(t, mem, GDTStart+uint64(i)*8); got != want {
			t.Errorf("GDT[%d] = %#x, want %#x", i, got, want)
		}
	}
	if got := readU64(t, mem, IDTStart); got != 0 {
		t.Errorf("IDT = %#x", got)
	}
	if err := WritePVHGDT(mem); err != nil {
		t.Fatal(err)
	}
	if got := readU64(t, mem, GDTStart+8); got != GDTCode32 {
		t.Errorf("PVH GDT[1] = %#x", got)
	}
	if BootGDTLimit != 31 || BootIDTLimit != 7 {
		t.Errorf("limits %d %d", BootGDTLimit, BootIDTLimit)
	}
}

func TestSegmentFromGDT(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  Segment
		want Segment
	}{
		{"code64", CodeSegment(), Segment{Limit: 0xffffffff, Selector: 8, Type: 0xb, Present: 1, S: 1, L: 1, G: 1}},
		{"data", DataSegment(), Segment{Limit: 0xffffffff, Selector: 0x10, Type: 3, Present: 1, DB: 1, S: 1, G: 1}},
		{"tss", TSSSegment(), Segment{Limit: 0xffffffff, Selector: 0x18, Type: 0xb, Present: 1, G: 1}},
		{"pvh code", PVHCodeSegment(), Segment{Limit: 0xffffffff, Selector: 8, Type: 0xb, Present: 1, DB: 1, S: 1, G: 1}},
		{"pvh data", PVHDataSegment(), Segment{Limit: 0xffffffff, Selector: 0x10, Type: 3, Present: 1, DB: 1, S: 1, G: 1}},
		{"pvh tss", PVHTSSSegment(), Segment{Limit: 0x67, Selector: 0x18, Type: 0xb, Present: 1}},
		// Base 0x12345678, limit 0xabcde bytes, DPL 3, AVL, not present.
		{"fields", SegmentFromGDT(0x121a62345678bcde, 0x2b),
			Segment{Base: 0x12345678, Limit: 0xabcde, Selector: 0x2b, Type: 2, DPL: 3, S: 0, AVL: 1}},
		{"null", SegmentFromGDT(0, 0), Segment{}},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}
}

func TestWriteIdentityPageTables(t *testing.T) {
	mem := newMem(t, 64<<20)
	// Leftovers from an earlier boot must be cleared.
	if err := mem.PutUint64(PML4Start+8, 0xdead); err != nil {
		t.Fatal(err)
	}
	cr3, err := WriteIdentityPageTables(mem)
	if err != nil {
		t.Fatal(err)
	}
	if cr3 != PML4Start {
		t.Errorf("cr3 = %#x", cr3)
	}
	if got := readU64(t, mem, PML4Start); got != 0xa003 {
		t.Errorf("PML4[0] = %#x", got)
	}
	if got := readU64(t, mem, PDPTStart); got != 0xb003 {
		t.Errorf("PDPT[0] = %#x", got)
	}
	for i := uint64(1); i < 512; i++ {
		if readU64(t, mem, PML4Start+i*8) != 0 || readU64(t, mem, PDPTStart+i*8) != 0 {
			t.Fatalf("entry %d of PML4 or PDPT not empty", i)
		}
	}
	for i := uint64(0); i < 512; i++ {
		if got := readU64(t, mem, PDStart+i*8); got != i<<21|0x83 {
			t.Fatalf("PD[%d] = %#x", i, got)
		}
	}
	// Walk the tables for a few addresses.
	for _, va := range []uint64{0, 0x1000, 0x100000, 0x1234567, IdentityMapSize - 1} {
		pml4e := readU64(t, mem, cr3+(va>>39&511)*8)
		pdpte := readU64(t, mem, pml4e&^0xfff+(va>>30&511)*8)
		pde := readU64(t, mem, pdpte&^0xfff+(va>>21&511)*8)
		if pde&PTEPageSize == 0 || pde&PTEPresent == 0 {
			t.Fatalf("va %#x: PDE %#x is not a present 2 MiB page", va, pde)
		}
		if pa := pde&^0x1fffff | va&0x1fffff; pa != va {
			t.Errorf("va %#x maps to %#x", va, pa)
		}
	}
}

func TestBootTablesOutOfRange(t *testing.T) {
	mem := newMem(t, 0x1000) // one page: no room for the page tables
	if _, err := WriteIdentityPageTables(mem); !errors.Is(err, guestmem.ErrOutOfRange) {
		t.Errorf("page tables: error %v", err)
	}
	if err := WriteBootGDT(mem); err != nil {
		t.Errorf("GDT in the first page: %v", err)
	}
	if err := WriteMPTable(mem, 1); !errors.Is(err, guestmem.ErrOutOfRange) {
		t.Errorf("MP table: error %v", err)
	}
}

func TestBootRegisterConstants(t *testing.T) {
	if BootCR0 != 0x80000011 || BootCR4 != 0x20 || BootEFER != 0x500 || PVHCR0 != 0x11 {
		t.Errorf("CR0 %#x CR4 %#x EFER %#x PVH CR0 %#x", BootCR0, BootCR4, BootEFER, PVHCR0)
	}
}
