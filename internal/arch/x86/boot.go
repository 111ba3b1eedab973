package x86

import (
	"encoding/binary"
	"fmt"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// Control register and EFER bits used to enter the guest.
const (
	CR0PE = 1 << 0  // protected mode
	CR0MP = 1 << 1  // monitor coprocessor
	CR0EM = 1 << 2  // x87 emulation
	CR0TS = 1 << 3  // task switched
	CR0ET = 1 << 4  // extension type (always 1)
	CR0NE = 1 << 5  // native x87 error reporting
	CR0WP = 1 << 16 // write protect
	CR0AM = 1 << 18 // alignment mask
	CR0NW = 1 << 29 // not write-through
	CR0CD = 1 << 30 // cache disable
	CR0PG = 1 << 31 // paging

	CR4PSE        = 1 << 4
	CR4PAE        = 1 << 5
	CR4PGE        = 1 << 7
	CR4OSFXSR     = 1 << 9
	CR4OSXMMEXCPT = 1 << 10
	CR4OSXSAVE    = 1 << 18

	EFERSCE = 1 << 0  // SYSCALL enable
	EFERLME = 1 << 8  // long mode enable
	EFERLMA = 1 << 10 // long mode active
	EFERNXE = 1 << 11 // no-execute enable

	RFLAGSReserved = 1 << 1 // bit 1 of RFLAGS always reads 1
)

// Register values at entry. The 64-bit boot protocol starts in long mode
// with paging on the identity tables; PVH starts in flat 32-bit protected
// mode with paging off.
const (
	BootCR0  = CR0PE | CR0ET | CR0PG
	BootCR4  = CR4PAE
	BootEFER = EFERLME | EFERLMA
	PVHCR0   = CR0PE | CR0ET
)

// Boot GDT descriptors. The 64-bit GDT holds Null, Code64, Data, TSS; the
// PVH GDT holds Null, Code32, Data, TSS32 at the same selectors.
const (
	GDTNull   uint64 = 0
	GDTCode64 uint64 = 0x00af9b000000ffff // base 0, limit 4G, 64-bit, execute/read, accessed
	GDTData   uint64 = 0x00cf93000000ffff // base 0, limit 4G, read/write, accessed
	GDTTSS    uint64 = 0x008f8b000000ffff // busy TSS, limit 4G
	GDTCode32 uint64 = 0x00cf9b000000ffff // base 0, limit 4G, 32-bit, execute/read, accessed
	GDTTSS32  uint64 = 0x00008b0000000067 // busy 32-bit TSS, limit 0x67 bytes
)

// Segment selectors into the boot GDT.
const (
	CodeSelector uint16 = 0x08
	DataSelector uint16 = 0x10
	TSSSelector  uint16 = 0x18
)

// Boot descriptor table sizes, as the limits KVM_SET_SREGS wants.
const (
	BootGDTEntries = 4
	BootGDTLimit   = BootGDTEntries*8 - 1
	BootIDTLimit   = 8 - 1 // one empty gate
)

// Segment is a decoded segment descriptor in the shape of kvm_segment:
// Limit is in bytes (scaled when G is set). The segment is usable when
// Present is 1.
type Segment struct {
	Base                                 uint64
	Limit                                uint32
	Selector                             uint16
	Type, Present, DPL, DB, S, L, G, AVL uint8
}

// SegmentFromGDT decodes a GDT descriptor loaded with selector.
func SegmentFromGDT(entry uint64, selector uint16) Segment {
	bit := func(n uint) uint8 { return uint8(entry >> n & 1) }
	s := Segment{
		Base:     entry>>16&0xffffff | entry>>56<<24,
		Limit:    uint32(entry&0xffff | entry>>48&0xf<<16),
		Selector: selector,
		Type:     uint8(entry >> 40 & 0xf),
		S:        bit(44),
		DPL:      uint8(entry >> 45 & 3),
		Present:  bit(47),
		AVL:      bit(52),
		L:        bit(53),
		DB:       bit(54),
		G:        bit(55),
	}
	if s.G == 1 {
		s.Limit = s.Limit<<12 | 0xfff
	}
	return s
}

// CodeSegment, DataSegment and TSSSegment are the segment registers of the
// 64-bit boot protocol (CS; DS, ES, FS, GS, SS; TR).
func CodeSegment() Segment { return SegmentFromGDT(GDTCode64, CodeSelector) }
func DataSegment() Segment { return SegmentFromGDT(GDTData, DataSelector) }
func TSSSegment() Segment  { return SegmentFromGDT(GDTTSS, TSSSelector) }

// PVHCodeSegment, PVHDataSegment and PVHTSSSegment are the flat 32-bit
// segments the PVH entry point expects.
func PVHCodeSegment() Segment { return SegmentFromGDT(GDTCode32, CodeSelector) }
func PVHDataSegment() Segment { return SegmentFromGDT(GDTData, DataSelector) }
func PVHTSSSegment() Segment  { return SegmentFromGDT(GDTTSS32, TSSSelector) }

// WriteBootGDT writes the 64-bit boot GDT at GDTStart and an empty IDT at
// IDTStart.
func WriteBootGDT(mem *guestmem.Memory) error {
	return writeGDT(mem, [BootGDTEntries]uint64{GDTNull, GDTCode64, GDTData, GDTTSS})
}

// WritePVHGDT writes the 32-bit PVH boot GDT at GDTStart and an empty IDT
// at IDTStart, so a guest that reloads a selector gets the same segment.
func WritePVHGDT(mem *guestmem.Memory) error {
	return writeGDT(mem, [BootGDTEntries]uint64{GDTNull, GDTCode32, GDTData, GDTTSS32})
}

func writeGDT(mem *guestmem.Memory, gdt [BootGDTEntries]uint64) error {
	var buf [BootGDTEntries * 8]byte
	for i, d := range gdt {
		binary.LittleEndian.PutUint64(buf[i*8:], d)
	}
	if err := mem.WriteAt(buf[:], GDTStart); err != nil {
		return fmt.Errorf("x86: writing boot GDT at %#x: %w", GDTStart, err)
	}
	if err := mem.PutUint64(IDTStart, 0); err != nil {
		return fmt.Errorf("x86: writing boot IDT at %#x: %w", IDTStart, err)
	}
	return nil
}

// Page-table entry bits.
const (
	PTEPresent  = 1 << 0
	PTEWritable = 1 << 1
	PTEPageSize = 1 << 7 // 2 MiB page in a PD entry
)

// IdentityMapSize is the span the boot page tables map 1:1.
const IdentityMapSize = 1 << 30

const pageSize = 4096

// WriteIdentityPageTables builds PML4 -> PDPT -> PD at PML4Start,
// PDPTStart and PDStart, mapping the first IdentityMapSize bytes with
// 2 MiB pages, and returns the CR3 value.
func WriteIdentityPageTables(mem *guestmem.Memory) (cr3 uint64, err error) {
	var page [pageSize]byte
	binary.LittleEndian.PutUint64(page[:], PDPTStart|PTEPresent|PTEWritable)
	if err := mem.WriteAt(page[:], PML4Start); err != nil {
		return 0, fmt.Errorf("x86: writing PML4 at %#x: %w", PML4Start, err)
	}
	binary.LittleEndian.PutUint64(page[:], PDStart|PTEPresent|PTEWritable)
	if err := mem.WriteAt(page[:], PDPTStart); err != nil {
		return 0, fmt.Errorf("x86: writing PDPT at %#x: %w", PDPTStart, err)
	}
	for i := range pageSize / 8 {
		binary.LittleEndian.PutUint64(page[i*8:], uint64(i)<<21|PTEPresent|PTEWritable|PTEPageSize)
	}
	if err := mem.WriteAt(page[:], PDStart); err != nil {
		return 0, fmt.Errorf("x86: writing page directory at %#x: %w", PDStart, err)
	}
	return PML4Start, nil
}
