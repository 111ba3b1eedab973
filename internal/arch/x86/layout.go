// Package x86 holds the x86-64 machine layout and the tables and register
// values a guest kernel expects at entry: memory map, CPUID, MSRs, GDT,
// identity page tables and the MP table.
package x86

import "github.com/vireo-vmm/vireo/internal/guestmem"

// Guest physical layout. Low memory follows the PC conventions Linux
// expects; RAM above MMIOHoleStart continues at 4 GiB.
const (
	ZeroPageStart   = 0x7000 // Linux boot_params ("zero page")
	PVHInfoStart    = 0x6000 // PVH hvm_start_info
	PVHModlistStart = 0x6040 // PVH module list (initrd)
	PVHMemmapStart  = 0x6100 // PVH memory map entries
	PVHMemmapMax    = 64     // entries that fit before the boot stack page
	GDTStart        = 0x500  // boot GDT
	IDTStart        = 0x520  // boot IDT (empty)
	BootStackTop    = 0x8ff0 // initial RSP
	PML4Start       = 0x9000 // identity page tables: PML4, PDPT, PD
	PDPTStart       = 0xa000
	PDStart         = 0xb000
	CmdlineStart    = 0x20000 // kernel command line
	CmdlineMax      = 0x10000 // including the terminating NUL
	EBDAStart       = 0x9fc00 // start of the reserved area below 1 MiB; MP table lives here
	HighMemStart    = 0x100000
	MMIOHoleStart   = 0xc0000000 // 3 GiB: 32-bit MMIO hole up to 4 GiB
	MMIOHoleEnd     = 0x100000000
	VirtioMMIOBase  = 0xd0000000 // virtio-mmio device windows, VirtioMMIOSize each
	VirtioMMIOSize  = 0x1000
	IOAPICBase      = 0xfec00000
	LAPICBase       = 0xfee00000
	// TSSAddr and IdentityMapAddr are the three pages KVM needs for its
	// real-mode emulation (KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR),
	// placed just below the IOAPIC inside the hole.
	TSSAddr         = 0xfffbd000
	IdentityMapAddr = 0xfffbc000
)

// Memory-map entry types (e820 / PVH memmap).
const (
	E820RAM      = 1
	E820Reserved = 2
)

// E820Entry is one range of the guest memory map.
type E820Entry struct {
	Addr, Size uint64
	Type       uint32
}

// RAMRegions splits size bytes of guest RAM around the 32-bit MMIO hole.
func RAMRegions(size uint64) []guestmem.RegionSpec {
	if size <= MMIOHoleStart {
		return []guestmem.RegionSpec{{GPA: 0, Size: size}}
	}
	return []guestmem.RegionSpec{
		{GPA: 0, Size: MMIOHoleStart},
		{GPA: MMIOHoleEnd, Size: size - MMIOHoleStart},
	}
}

// E820 returns the guest memory map for RAM laid out by RAMRegions.
func E820(mem *guestmem.Memory) []E820Entry {
	var out []E820Entry
	for _, r := range mem.Regions() {
		if r.GPA == 0 {
			out = append(out,
				E820Entry{0, EBDAStart, E820RAM},
				E820Entry{EBDAStart, HighMemStart - EBDAStart, E820Reserved})
			if r.Size > HighMemStart {
				out = append(out, E820Entry{HighMemStart, r.Size - HighMemStart, E820RAM})
			}
			continue
		}
		out = append(out, E820Entry{r.GPA, r.Size, E820RAM})
	}
	return out
}
