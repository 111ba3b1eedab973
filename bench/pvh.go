package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
)

// The tiny guest used by the first-instruction benchmark: a 64-bit ELF
// executable whose only loadable segment sits at 1 MiB physical and whose
// Xen PVH note points at it. Both VMMs enter it in 32-bit protected mode
// with paging off; it writes one byte to COM1 and halts for good.

const (
	// tinyEntry is the guest-physical load address and PVH entry point.
	tinyEntry = 0x100000
	// tinyMarker is the byte the tiny guest writes to the serial port.
	tinyMarker = '!'
	// tinyCodeOffset is the file offset of the code (page aligned, like
	// the segment's address).
	tinyCodeOffset = 0x1000

	elfHeaderSize  = 64
	elfPhdrSize    = 56
	elfNoteHdrSize = 12
	ptLoad         = 1
	ptNote         = 4
	pfX            = 1
	pfR            = 4
	emX8664        = 62
	etExec         = 2

	// xenNoteType is XEN_ELFNOTE_PHYS32_ENTRY: the desc holds the 32-bit
	// physical address where a PVH boot enters the kernel.
	xenNoteType = 18
	xenNoteName = "Xen"
)

// tinyCode is the guest's only code, in 32-bit protected mode.
var tinyCode = []byte{
	0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8 (COM1 data register)
	0xb0, tinyMarker, //       mov al, '!'
	0xee,       //             out dx, al
	0xf4,       //             hlt
	0xeb, 0xfd, //             jmp back to hlt
}

// pvhNotes returns the contents of the PT_NOTE segment: the Xen PVH entry
// note with a 4-byte desc, then an empty note (all fields zero).
//
// The empty note matters to QEMU: for a 64-bit ELF it reads the desc as a
// 64-bit word whatever its size, so the four bytes after a 4-byte desc must
// be zero and inside the segment. An empty note is a well-formed way to
// put them there.
func pvhNotes(entry uint32) []byte {
	le := binary.LittleEndian
	name := append([]byte(xenNoteName), 0) // 4 bytes: no padding needed
	b := make([]byte, 0, 2*elfNoteHdrSize+len(name)+4)
	b = le.AppendUint32(b, uint32(len(name)))
	b = le.AppendUint32(b, 4)
	b = le.AppendUint32(b, xenNoteType)
	b = append(b, name...)
	b = le.AppendUint32(b, entry)
	return append(b, make([]byte, elfNoteHdrSize)...) // the empty note
}

// tinyELF builds the tiny guest's ELF file: an ELF header, two program
// headers (the code as PT_LOAD at tinyEntry, the notes as PT_NOTE), the
// notes, and the code at tinyCodeOffset. It has no section headers.
func tinyELF() []byte {
	le := binary.LittleEndian
	const phoff = elfHeaderSize
	const noteOff = phoff + 2*elfPhdrSize
	notes := pvhNotes(tinyEntry)

	f := make([]byte, tinyCodeOffset+len(tinyCode))
	copy(f, []byte{0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* little endian */, 1 /* version */})
	le.PutUint16(f[16:], etExec)
	le.PutUint16(f[18:], emX8664)
	le.PutUint32(f[20:], 1) // e_version
	le.PutUint64(f[24:], tinyEntry)
	le.PutUint64(f[32:], phoff)
	// e_shoff (40), e_flags (48) stay zero.
	le.PutUint16(f[52:], elfHeaderSize)
	le.PutUint16(f[54:], elfPhdrSize)
	le.PutUint16(f[56:], 2) // e_phnum
	le.PutUint16(f[58:], 64)
	// e_shnum, e_shstrndx stay zero.

	putPhdr(f[phoff:], ptLoad, pfR|pfX, tinyCodeOffset, tinyEntry, uint64(len(tinyCode)), 0x1000)
	putPhdr(f[phoff+elfPhdrSize:], ptNote, pfR, noteOff, 0, uint64(len(notes)), 4)
	copy(f[noteOff:], notes)
	copy(f[tinyCodeOffset:], tinyCode)
	return f
}

// putPhdr writes one ELF64 program header into b; vaddr and paddr are
// equal, and the memory size equals the file size.
func putPhdr(b []byte, typ, flags uint32, off, addr, size, align uint64) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], typ)
	le.PutUint32(b[4:], flags)
	le.PutUint64(b[8:], off)
	le.PutUint64(b[16:], addr)
	le.PutUint64(b[24:], addr)
	le.PutUint64(b[32:], size)
	le.PutUint64(b[40:], size)
	le.PutUint64(b[48:], align)
}

// writeTinyELF writes the tiny guest into dir and returns its path.
func writeTinyELF(dir string) (string, error) {
	p := filepath.Join(dir, "tiny-pvh.elf")
	if err := os.WriteFile(p, tinyELF(), 0o644); err != nil {
		return "", fmt.Errorf("write tiny guest: %w", err)
	}
	return p, nil
}
