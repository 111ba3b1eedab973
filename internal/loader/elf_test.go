package loader

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
)

const mib = 1 << 20

// twoSegments is a small kernel: text at 2 MiB, data plus bss at 3 MiB.
func twoSegments(notes ...[]byte) []byte {
	segs := []testSeg{
		{typ: ptLoad, paddr: 2 * mib, data: pattern(5000, 1)},
		{typ: ptLoad, paddr: 3 * mib, data: pattern(3000, 2), memsz: 0x3000},
	}
	for _, n := range notes {
		segs = append(segs, testSeg{typ: ptNote, data: n, align: 4})
	}
	return buildELF(2*mib+0x40, segs...)
}

func TestLoadELFPVH(t *testing.T) {
	mem := newMem(t, 16*mib)
	fill(t, mem, 3*mib, 0x4000, 0xee) // stale bytes the bss must not keep
	img := twoSegments(note("Linux", 1, []byte{1, 2, 3}), pvhNote(2*mib+0x100))
	k, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if k.Protocol != ProtocolPVH || k.Format != FormatELF {
		t.Errorf("protocol %v format %v, want pvh elf", k.Protocol, k.Format)
	}
	if k.Entry != 2*mib+0x100 || k.ELFEntry != 2*mib+0x40 {
		t.Errorf("entry %#x elf entry %#x, want %#x and %#x", k.Entry, k.ELFEntry, 2*mib+0x100, 2*mib+0x40)
	}
	if k.LoadAddr != 2*mib || k.End != 3*mib+0x3000 {
		t.Errorf("image spans %#x-%#x, want %#x-%#x", k.LoadAddr, k.End, 2*mib, 3*mib+0x3000)
	}
	if k.Setup != nil || k.CmdlineMax != 0 || k.InitrdAddrMax != 0 {
		t.Errorf("ELF kernel carries bzImage fields: %+v", k)
	}
	if !bytes.Equal(guestBytes(t, mem, 2*mib, 5000), pattern(5000, 1)) {
		t.Error("text segment not copied")
	}
	if !bytes.Equal(guestBytes(t, mem, 3*mib, 3000), pattern(3000, 2)) {
		t.Error("data segment not copied")
	}
	if bss := guestBytes(t, mem, 3*mib+3000, 0x3000-3000); !bytes.Equal(bss, make([]byte, len(bss))) {
		t.Error("bss not cleared")
	}
	if after := guestBytes(t, mem, 3*mib+0x3000, 16); !bytes.Equal(after, bytes.Repeat([]byte{0xee}, 16)) {
		t.Error("loader wrote past the last segment")
	}
}

func TestLoadELFLinux64(t *testing.T) {
	mem := newMem(t, 16*mib)
	img := twoSegments(note("Linux", 1, []byte{1}), note("Xen", 5, []byte{1, 2, 3, 4}))
	k, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if k.Protocol != ProtocolLinux64 || k.Entry != 2*mib+0x40 {
		t.Errorf("protocol %v entry %#x, want linux64 at %#x", k.Protocol, k.Entry, 2*mib+0x40)
	}
}

func TestLoadELFPVHNote8Byte(t *testing.T) {
	mem := newMem(t, 16*mib)
	d := make([]byte, 8)
	le.PutUint64(d, 3*mib+8)
	img := twoSegments(note("Xen", xenNotePhys32Entry, d))
	k, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if k.Protocol != ProtocolPVH || k.Entry != 3*mib+8 {
		t.Errorf("protocol %v entry %#x, want pvh at %#x", k.Protocol, k.Entry, 3*mib+8)
	}
}

func TestLoadELFMalformed(t *testing.T) {
	base := twoSegments(pvhNote(2*mib + 0x100))
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
		want   error
		msg    string
	}{
		{"32-bit", func(b []byte) []byte { b[4] = 1; return b }, ErrUnsupported, "not 64-bit"},
		{"big endian", func(b []byte) []byte { b[5] = 2; return b }, ErrUnsupported, "little endian"},
		{"bad version", func(b []byte) []byte { b[6] = 0; return b }, ErrUnsupported, "version"},
		{"aarch64", func(b []byte) []byte { le.PutUint16(b[18:], 183); return b }, ErrUnsupported, "x86-64"},
		{"shared object", func(b []byte) []byte { le.PutUint16(b[16:], 3); return b }, ErrUnsupported, "executable"},
		{"truncated header", func(b []byte) []byte { return b[:40] }, ErrTruncated, "ELF header"},
		{"no phdrs", func(b []byte) []byte { le.PutUint16(b[56:], 0); return b }, ErrInvalid, "no program headers"},
		{"absurd phnum", func(b []byte) []byte { le.PutUint16(b[56:], 0xffff); return b }, ErrInvalid, "program headers"},
		{"phentsize", func(b []byte) []byte { le.PutUint16(b[54:], 32); return b }, ErrInvalid, "header size"},
		{"phdrs beyond file", func(b []byte) []byte { le.PutUint64(b[32:], uint64(len(b))-10); return b }, ErrTruncated, "beyond"},
		{"phoff huge", func(b []byte) []byte { le.PutUint64(b[32:], 1<<63+5); return b }, ErrTruncated, "beyond"},
		{"truncated phdrs", func(b []byte) []byte { return b[:elfHeaderSize+elfPhdrSize+7] }, ErrTruncated, ""},
		{"segment beyond file", func(b []byte) []byte {
			le.PutUint64(phdr(b, 0)[32:], 1<<40)
			le.PutUint64(phdr(b, 0)[40:], 1<<40)
			return b
		}, ErrTruncated, "beyond"},
		{"segment offset wraps", func(b []byte) []byte { le.PutUint64(phdr(b, 1)[8:], 1<<64-8); return b }, ErrTruncated, "beyond"},
		{"filesz > memsz", func(b []byte) []byte { le.PutUint64(phdr(b, 1)[40:], 10); return b }, ErrInvalid, "memory bytes"},
		{"below 1 MiB", func(b []byte) []byte { le.PutUint64(phdr(b, 0)[24:], 0x9000); return b }, ErrInvalid, "below 1 MiB"},
		{"overlap", func(b []byte) []byte { le.PutUint64(phdr(b, 1)[24:], 2*mib+4096); return b }, ErrInvalid, "overlap"},
		{"beyond RAM", func(b []byte) []byte { le.PutUint64(phdr(b, 1)[24:], 16*mib-100); return b }, ErrTooLarge, "beyond the end of guest RAM at 0x1000000 (16 MiB)"},
		{"wraps address space", func(b []byte) []byte { le.PutUint64(phdr(b, 1)[24:], 1<<64-0x1000); return b }, ErrInvalid, "wraps"},
		{"larger than RAM", func(b []byte) []byte { le.PutUint64(phdr(b, 1)[40:], 300*mib-5000); return b }, ErrTooLarge, "kernel image is 300 MiB but guest RAM is 16 MiB"},
		{"memsz huge", func(b []byte) []byte {
			le.PutUint64(phdr(b, 0)[40:], 1<<64-1)
			le.PutUint64(phdr(b, 1)[40:], 1<<64-1)
			return b
		}, ErrTooLarge, "more than guest RAM (16 MiB)"},
		{"no loads", func(b []byte) []byte { le.PutUint32(phdr(b, 0)[0:], 6); le.PutUint32(phdr(b, 1)[0:], 6); return b }, ErrInvalid, "no loadable"},
		{"pvh entry outside", func(b []byte) []byte { le.PutUint32(b[len(b)-4:], 0x1234); return b }, ErrInvalid, "PVH entry"},
		{"note past segment", func(b []byte) []byte { le.PutUint32(b[len(b)-20+4:], 64); return b }, ErrInvalid, "note"},
		{"note namesz huge", func(b []byte) []byte { le.PutUint32(b[len(b)-20:], 0xffffffff); return b }, ErrInvalid, "note"},
		{"note too big", func(b []byte) []byte {
			le.PutUint64(phdr(b, 2)[8:], 0)
			le.PutUint64(phdr(b, 2)[32:], uint64(len(b)))
			return b
		}, ErrInvalid, ""},
		{"note segment huge", func(b []byte) []byte { le.PutUint64(phdr(b, 2)[32:], 2<<20); return b }, ErrTruncated, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem(t, 16*mib)
			img := tc.mutate(bytes.Clone(base))
			_, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
			checkErr(t, err, tc.want)
			t.Log(err)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

func TestLoadELFBadEntry(t *testing.T) {
	mem := newMem(t, 16*mib)
	img := twoSegments()
	le.PutUint64(img[24:], 0xffffffff81000000) // a virtual address
	_, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
	checkErr(t, err, ErrInvalid)
}

func TestLoadELFHoleSegment(t *testing.T) {
	// A segment inside the 32-bit MMIO hole of a guest with RAM above 4 GiB.
	mem := newMem(t, x86.MMIOHoleStart+16*mib)
	img := buildELF(x86.MMIOHoleStart+mib, testSeg{typ: ptLoad, paddr: x86.MMIOHoleStart + mib, data: pattern(100, 0)})
	_, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
	checkErr(t, err, ErrInvalid)
}

func TestLoadELFShortReader(t *testing.T) {
	img := twoSegments(pvhNote(2*mib + 0x100))
	t.Run("size larger than file", func(t *testing.T) {
		mem := newMem(t, 16*mib)
		_, err := LoadKernel(mem, bytes.NewReader(img[:len(img)-100]), int64(len(img)))
		checkErr(t, err, ErrTruncated)
	})
	t.Run("read error", func(t *testing.T) {
		mem := newMem(t, 16*mib)
		r := errAfter{bytes.NewReader(img), 200}
		_, err := LoadKernel(mem, r, int64(len(img)))
		checkErr(t, err, ErrTruncated)
		if !strings.Contains(err.Error(), iotest.ErrTimeout.Error()) {
			t.Errorf("error %q hides the read error", err)
		}
	})
}

// errAfter fails reads that reach past byte n.
type errAfter struct {
	r *bytes.Reader
	n int64
}

func (e errAfter) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > e.n {
		return 0, iotest.ErrTimeout
	}
	return e.r.ReadAt(p, off)
}

func TestFindPVHEntry8Aligned(t *testing.T) {
	// With 8-byte note alignment the descriptor starts at 16 for "Xen\0".
	b := make([]byte, 24)
	le.PutUint32(b[0:], 4)
	le.PutUint32(b[4:], 4)
	le.PutUint32(b[8:], xenNotePhys32Entry)
	copy(b[12:], "Xen\x00")
	le.PutUint32(b[16:], 0x1000500)
	got, ok, err := findPVHEntry(b, 8)
	if err != nil || !ok || got != 0x1000500 {
		t.Fatalf("findPVHEntry = %#x, %v, %v; want 0x1000500", got, ok, err)
	}
	if _, _, err := findPVHEntry(b[:18], 8); err == nil {
		t.Fatal("cut note accepted")
	}
	le.PutUint32(b[4:], 2)
	if _, _, err := findPVHEntry(b, 8); err == nil {
		t.Fatal("2-byte PVH entry accepted")
	}
}

func TestLoadELFHugeNoteSegment(t *testing.T) {
	mem := newMem(t, 16*mib)
	huge := append(pvhNote(2*mib+16), make([]byte, maxNoteSegment)...)
	img := buildELF(2*mib, testSeg{typ: ptLoad, paddr: 2 * mib, data: pattern(64, 0)}, testSeg{typ: ptNote, data: huge, align: 4})
	_, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
	checkErr(t, err, ErrInvalid)
	if !strings.Contains(err.Error(), "at most 1 MiB") {
		t.Errorf("error %q does not give the limit", err)
	}
}
