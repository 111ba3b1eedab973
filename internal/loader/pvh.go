package loader

import (
	"encoding/binary"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// PVH start-of-day structures (include/xen/interface/hvm/start_info.h).
// All fields are little endian.
const (
	pvhMagic   = 0x336ec578 // XEN_HVM_START_MAGIC_VALUE
	pvhVersion = 1          // adds memmap_paddr and memmap_entries

	// struct hvm_start_info, 56 bytes.
	siMagic         = 0
	siVersion       = 4
	siFlags         = 8
	siNrModules     = 12
	siModlistPaddr  = 16
	siCmdlinePaddr  = 24
	siRsdpPaddr     = 32
	siMemmapPaddr   = 40
	siMemmapEntries = 48
	siSize          = 56

	// struct hvm_modlist_entry, 32 bytes: paddr, size, cmdline_paddr, reserved.
	modlistEntrySize = 32
	// struct hvm_memmap_table_entry, 24 bytes: addr, size, type, reserved.
	memmapEntrySize = 24
)

// writeStartInfo writes struct hvm_start_info, the initrd module entry and
// the memory map. The caller has checked the map's length.
func writeStartInfo(mem *guestmem.Memory, bi BootInfo) error {
	le := binary.LittleEndian
	var si [siSize]byte
	le.PutUint32(si[siMagic:], pvhMagic)
	le.PutUint32(si[siVersion:], pvhVersion)
	le.PutUint32(si[siFlags:], 0)
	le.PutUint64(si[siCmdlinePaddr:], x86.CmdlineStart)
	le.PutUint64(si[siRsdpPaddr:], 0) // no ACPI: the guest finds the MP table
	le.PutUint64(si[siMemmapPaddr:], x86.PVHMemmapStart)
	le.PutUint32(si[siMemmapEntries:], uint32(len(bi.E820)))

	var mod [modlistEntrySize]byte
	if bi.InitrdSize > 0 {
		le.PutUint32(si[siNrModules:], 1)
		le.PutUint64(si[siModlistPaddr:], x86.PVHModlistStart)
		le.PutUint64(mod[0:], bi.InitrdGPA)
		le.PutUint64(mod[8:], bi.InitrdSize)
	}

	mm := make([]byte, len(bi.E820)*memmapEntrySize)
	for i, e := range bi.E820 {
		o := i * memmapEntrySize
		le.PutUint64(mm[o:], e.Addr)
		le.PutUint64(mm[o+8:], e.Size)
		le.PutUint32(mm[o+16:], e.Type)
	}

	for _, w := range []struct {
		what string
		gpa  uint64
		b    []byte
	}{
		{"hvm_start_info", x86.PVHInfoStart, si[:]},
		{"the PVH module list", x86.PVHModlistStart, mod[:]},
		{"the PVH memory map", x86.PVHMemmapStart, mm},
	} {
		if err := mem.WriteAt(w.b, w.gpa); err != nil {
			return wrapf(ErrTooLarge, err, "writing %s at %#x", w.what, w.gpa)
		}
	}
	return nil
}
