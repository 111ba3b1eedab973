package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"testing"
)

// note is one parsed ELF note.
type note struct {
	name string
	typ  uint32
	desc []byte
}

// parseNotes walks a note segment with 4-byte padding.
func parseNotes(t *testing.T, b []byte) []note {
	t.Helper()
	le := binary.LittleEndian
	pad := func(n int) int { return (n + 3) &^ 3 }
	var notes []note
	for len(b) > 0 {
		if len(b) < elfNoteHdrSize {
			t.Fatalf("%d stray bytes at the end of the note segment", len(b))
		}
		namesz, descsz, typ := int(le.Uint32(b)), int(le.Uint32(b[4:])), le.Uint32(b[8:])
		descAt := elfNoteHdrSize + pad(namesz)
		end := descAt + pad(descsz)
		if end > len(b) {
			t.Fatalf("note (namesz %d, descsz %d) runs past the segment", namesz, descsz)
		}
		notes = append(notes, note{
			name: string(bytes.TrimRight(b[elfNoteHdrSize:elfNoteHdrSize+namesz], "\x00")),
			typ:  typ,
			desc: b[descAt : descAt+descsz],
		})
		b = b[end:]
	}
	return notes
}

func TestTinyELFParsesWithPVHNote(t *testing.T) {
	img := tinyELF()
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("debug/elf rejects the tiny guest: %v", err)
	}
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		t.Errorf("header: class %v data %v machine %v type %v", f.Class, f.Data, f.Machine, f.Type)
	}
	if f.Entry != tinyEntry {
		t.Errorf("entry %#x, want %#x", f.Entry, tinyEntry)
	}

	var loads, noteSegs []*elf.Prog
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			loads = append(loads, p)
		case elf.PT_NOTE:
			noteSegs = append(noteSegs, p)
		}
	}
	if len(loads) != 1 || len(noteSegs) != 1 {
		t.Fatalf("%d PT_LOAD and %d PT_NOTE segments, want 1 each", len(loads), len(noteSegs))
	}

	ld := loads[0]
	if ld.Paddr != tinyEntry || ld.Vaddr != tinyEntry || ld.Off%ld.Align != ld.Vaddr%ld.Align {
		t.Errorf("PT_LOAD at paddr %#x vaddr %#x offset %#x align %#x", ld.Paddr, ld.Vaddr, ld.Off, ld.Align)
	}
	if ld.Flags&elf.PF_X == 0 {
		t.Errorf("PT_LOAD flags %v lack execute", ld.Flags)
	}
	code, err := io.ReadAll(ld.Open())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(code, tinyCode) || ld.Memsz != uint64(len(tinyCode)) {
		t.Errorf("loaded bytes % x (memsz %d), want % x", code, ld.Memsz, tinyCode)
	}

	ns := noteSegs[0]
	if ns.Align != 4 {
		t.Errorf("PT_NOTE align %d, want 4", ns.Align)
	}
	raw, err := io.ReadAll(ns.Open())
	if err != nil {
		t.Fatal(err)
	}
	notes := parseNotes(t, raw)
	var found bool
	for _, n := range notes {
		if n.name == "Xen" && n.typ == 18 {
			found = true
			if len(n.desc) != 4 || binary.LittleEndian.Uint32(n.desc) != tinyEntry {
				t.Errorf("PVH note desc % x, want the 32-bit address %#x", n.desc, tinyEntry)
			}
		}
	}
	if !found {
		t.Fatalf("no Xen note of type 18 among %+v", notes)
	}
}

// QEMU reads the PVH desc of a 64-bit ELF as a 64-bit word; the four bytes
// after the 4-byte desc must be zero and inside the segment.
func TestTinyELFNoteReadsAs64BitWord(t *testing.T) {
	b := pvhNotes(tinyEntry)
	descAt := elfNoteHdrSize + 4
	if len(b) < descAt+8 {
		t.Fatalf("note segment is %d bytes, a 64-bit read at %d needs %d", len(b), descAt, descAt+8)
	}
	if got := binary.LittleEndian.Uint64(b[descAt:]); got != tinyEntry {
		t.Errorf("64-bit read of the desc = %#x, want %#x", got, tinyEntry)
	}
}

func TestTinyCode(t *testing.T) {
	// mov dx, 0x3f8; mov al, '!'; out dx, al; hlt; jmp -3 (back to hlt)
	want := []byte{0x66, 0xba, 0xf8, 0x03, 0xb0, '!', 0xee, 0xf4, 0xeb, 0xfd}
	if !bytes.Equal(tinyCode, want) {
		t.Errorf("tinyCode % x, want % x", tinyCode, want)
	}
	hlt := bytes.IndexByte(tinyCode, 0xf4)
	jmpEnd := len(tinyCode)
	if rel := int8(tinyCode[jmpEnd-1]); jmpEnd+int(rel) != hlt {
		t.Errorf("jmp lands at %d, want the hlt at %d", jmpEnd+int(rel), hlt)
	}
}

func TestWriteTinyELF(t *testing.T) {
	p, err := writeTinyELF(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, tinyELF()) {
		t.Error("file differs from tinyELF()")
	}
}
