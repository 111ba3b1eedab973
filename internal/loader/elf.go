package loader

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"io"
	"slices"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// ELF64 constants (System V ABI, x86-64 supplement).
const (
	elfHeaderSize = 64
	elfPhdrSize   = 56
	elfClass64    = 2
	elfDataLSB    = 1
	elfVersion    = 1
	elfTypeExec   = 2
	elfMachineX64 = 62
	ptLoad        = 1
	ptNote        = 4

	// maxPhnum bounds the program header count; a vmlinux has about 5.
	maxPhnum = 128
	// maxNoteSegment bounds a PT_NOTE segment read into host memory.
	maxNoteSegment = 1 << 20

	// xenNotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit physical
	// PVH entry point.
	xenNotePhys32Entry = 18
)

var elfMagic = []byte{0x7f, 'E', 'L', 'F'}

// isELF reports whether head starts with the ELF magic.
func isELF(head []byte) bool { return bytes.HasPrefix(head, elfMagic) }

// segment is a validated PT_LOAD program header.
type segment struct {
	index                     int
	off, paddr, filesz, memsz uint64
}

// elfImage is the parsed, validated program header table.
type elfImage struct {
	entry    uint64
	loads    []segment
	pvhEntry uint64
	hasPVH   bool
}

// loadELF validates an ELF vmlinux and copies its PT_LOAD segments to their
// physical addresses.
func loadELF(mem *guestmem.Memory, r io.ReaderAt, fileSize uint64, head []byte) (*Kernel, error) {
	img, err := parseELF(mem, r, fileSize, head)
	if err != nil {
		return nil, err
	}
	k := &Kernel{Format: FormatELF, Protocol: ProtocolLinux64, Entry: img.entry}
	if img.loaded(img.entry) {
		k.ELFEntry = img.entry
	}
	if img.hasPVH {
		k.Protocol = ProtocolPVH
		k.Entry = img.pvhEntry
	}
	k.LoadAddr = img.loads[0].paddr
	var end uint64
	for _, s := range img.loads {
		if err := readInto(mem, r, s.off, s.paddr, s.filesz); err != nil {
			return nil, err
		}
		if err := mem.Zero(s.paddr+s.filesz, s.memsz-s.filesz); err != nil {
			return nil, wrapf(ErrTooLarge, err, "clearing kernel segment %d", s.index)
		}
		end = max(end, s.paddr+s.memsz)
	}
	// Segments end below the top of RAM, which is page aligned.
	k.End, _ = alignUp(end, pageSize)
	return k, nil
}

// parseELF checks the ELF header and program headers against the file size
// and guest RAM, and finds the PVH entry note.
func parseELF(mem *guestmem.Memory, r io.ReaderAt, fileSize uint64, head []byte) (*elfImage, error) {
	entry, phoff, phnum, err := parseELFHeader(head, fileSize)
	if err != nil {
		return nil, err
	}
	table := make([]byte, phnum*elfPhdrSize)
	if err := readFull(r, table, phoff); err != nil {
		return nil, err
	}
	img := &elfImage{entry: entry}
	if err := img.readProgramHeaders(r, table, fileSize); err != nil {
		return nil, err
	}
	if err := img.checkLoads(mem); err != nil {
		return nil, err
	}
	if img.hasPVH {
		if !img.loaded(img.pvhEntry) {
			return nil, errorf(ErrInvalid, "PVH entry %#x is outside the loaded segments", img.pvhEntry)
		}
	} else if !img.loaded(img.entry) {
		return nil, errorf(ErrInvalid, "ELF entry %#x is not a physical address inside the loaded segments", img.entry)
	}
	return img, nil
}

// parseELFHeader checks the ELF identification and returns the entry point
// and the location of the program header table.
func parseELFHeader(head []byte, fileSize uint64) (entry, phoff, phnum uint64, err error) {
	if len(head) < elfHeaderSize {
		return 0, 0, 0, errorf(ErrTruncated, "ELF header needs %d bytes, file has %d", elfHeaderSize, len(head))
	}
	le := binary.LittleEndian
	switch {
	case head[4] != elfClass64:
		return 0, 0, 0, errorf(ErrUnsupported, "ELF class %d is not 64-bit", head[4])
	case head[5] != elfDataLSB:
		return 0, 0, 0, errorf(ErrUnsupported, "ELF data encoding %d is not little endian", head[5])
	case head[6] != elfVersion:
		return 0, 0, 0, errorf(ErrUnsupported, "ELF version %d is not 1", head[6])
	case le.Uint16(head[18:]) != elfMachineX64:
		return 0, 0, 0, errorf(ErrUnsupported, "ELF machine %d is not x86-64", le.Uint16(head[18:]))
	case le.Uint16(head[16:]) != elfTypeExec:
		return 0, 0, 0, errorf(ErrUnsupported, "ELF type %d is not an executable", le.Uint16(head[16:]))
	}
	entry, phoff = le.Uint64(head[24:]), le.Uint64(head[32:])
	phentsize, phnum := uint64(le.Uint16(head[54:])), uint64(le.Uint16(head[56:]))
	switch {
	case phnum == 0:
		return 0, 0, 0, errorf(ErrInvalid, "ELF has no program headers")
	case phnum > maxPhnum:
		return 0, 0, 0, errorf(ErrInvalid, "ELF has %d program headers (at most %d accepted)", phnum, maxPhnum)
	case phentsize != elfPhdrSize:
		return 0, 0, 0, errorf(ErrInvalid, "ELF program header size is %d, want %d", phentsize, elfPhdrSize)
	case phoff > fileSize || phnum*elfPhdrSize > fileSize-phoff:
		return 0, 0, 0, errorf(ErrTruncated, "ELF program headers at %#x+%#x lie beyond the %d-byte file", phoff, phnum*elfPhdrSize, fileSize)
	}
	return entry, phoff, phnum, nil
}

// readProgramHeaders collects the PT_LOAD segments of table and scans the
// PT_NOTE segments for the PVH entry.
func (img *elfImage) readProgramHeaders(r io.ReaderAt, table []byte, fileSize uint64) error {
	le := binary.LittleEndian
	for i := range len(table) / elfPhdrSize {
		ph := table[i*elfPhdrSize : (i+1)*elfPhdrSize]
		typ := le.Uint32(ph[0:])
		off, paddr := le.Uint64(ph[8:]), le.Uint64(ph[24:])
		filesz, memsz, align := le.Uint64(ph[32:]), le.Uint64(ph[40:]), le.Uint64(ph[48:])
		if typ != ptLoad && typ != ptNote {
			continue
		}
		if off > fileSize || filesz > fileSize-off {
			return errorf(ErrTruncated, "ELF segment %d at %#x+%#x lies beyond the %d-byte file", i, off, filesz, fileSize)
		}
		if typ == ptNote {
			if img.hasPVH {
				continue
			}
			if err := img.scanNotes(r, i, off, filesz, align); err != nil {
				return err
			}
			continue
		}
		if filesz > memsz {
			return errorf(ErrInvalid, "ELF segment %d has %#x file bytes but only %#x memory bytes", i, filesz, memsz)
		}
		if memsz > 0 {
			img.loads = append(img.loads, segment{index: i, off: off, paddr: paddr, filesz: filesz, memsz: memsz})
		}
	}
	if len(img.loads) == 0 {
		return errorf(ErrInvalid, "ELF has no loadable segments")
	}
	return nil
}

// checkLoads verifies that the segments fit in guest RAM, each inside one
// region above 1 MiB, without overlapping; it sorts them by address.
func (img *elfImage) checkLoads(mem *guestmem.Memory) error {
	const maxTotal = 1 << 62
	var total uint64 // sum of segment sizes, saturating at maxTotal
	for _, s := range img.loads {
		total = min(maxTotal, total+min(s.memsz, maxTotal))
	}
	if ramSize := mem.Size(); total > ramSize {
		if total == maxTotal {
			return errorf(ErrTooLarge, "kernel segment sizes add up to more than guest RAM (%s)", human(ramSize))
		}
		return errorf(ErrTooLarge, "kernel image is %s but guest RAM is %s", human(total), human(ramSize))
	}
	for _, s := range img.loads {
		if err := checkSegment(mem, s.index, s.paddr, s.memsz); err != nil {
			return err
		}
	}
	slices.SortFunc(img.loads, func(a, b segment) int { return cmp.Compare(a.paddr, b.paddr) })
	for j := 1; j < len(img.loads); j++ {
		a, b := img.loads[j-1], img.loads[j]
		if b.paddr < a.paddr+a.memsz {
			return errorf(ErrInvalid, "ELF segments %d (%#x-%#x) and %d (%#x-%#x) overlap",
				a.index, a.paddr, a.paddr+a.memsz, b.index, b.paddr, b.paddr+b.memsz)
		}
	}
	return nil
}

// checkSegment verifies that [paddr, paddr+memsz) is high memory inside one
// RAM region.
func checkSegment(mem *guestmem.Memory, i int, paddr, memsz uint64) error {
	if paddr < x86.HighMemStart {
		return errorf(ErrInvalid, "ELF segment %d at %#x is below 1 MiB", i, paddr)
	}
	end := paddr + memsz
	if end < paddr {
		return errorf(ErrInvalid, "ELF segment %d at %#x+%#x wraps around the address space", i, paddr, memsz)
	}
	if mem.Contains(paddr, memsz) {
		return nil
	}
	var top uint64
	if regs := mem.Regions(); len(regs) > 0 {
		last := regs[len(regs)-1]
		top = last.GPA + last.Size
	}
	if end > top {
		return errorf(ErrTooLarge, "kernel segment %d (%#x-%#x) lies beyond the end of guest RAM at %#x (%s)", i, paddr, end, top, human(top))
	}
	return errorf(ErrInvalid, "ELF segment %d (%#x-%#x) is not inside guest RAM", i, paddr, end)
}

// loaded reports whether gpa lies inside a loaded segment.
func (img *elfImage) loaded(gpa uint64) bool {
	for _, s := range img.loads {
		if gpa >= s.paddr && gpa-s.paddr < s.memsz {
			return true
		}
	}
	return false
}
