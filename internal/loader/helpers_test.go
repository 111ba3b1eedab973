package loader

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/guestmem"
)

const (
	realVmlinux = "/work/shared/guest/vmlinux"
	realBzImage = "/work/shared/guest/bzImage"
)

var le = binary.LittleEndian

// newMem maps size bytes of guest RAM laid out by x86.RAMRegions.
func newMem(tb testing.TB, size uint64) *guestmem.Memory {
	tb.Helper()
	m, err := guestmem.New(x86.RAMRegions(size), guestmem.Backing{})
	if err != nil {
		tb.Fatalf("guestmem.New(%d MiB): %v", size>>20, err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// readReal returns a real guest kernel file, skipping the test if absent.
func readReal(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Skipf("real guest kernel not available (%v); build it as /work/shared/guest/NOTES.md describes", err)
	}
	return b
}

// checkErr fails unless err wraps want and reads as one "loader: " line.
func checkErr(tb testing.TB, err, want error) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got no error, want %v", want)
	}
	if !errors.Is(err, want) {
		tb.Fatalf("error %q does not wrap %q", err, want)
	}
	checkErrShape(tb, err)
}

// checkErrShape fails unless err is an *Error with a one-line message.
func checkErrShape(tb testing.TB, err error) {
	tb.Helper()
	var lerr *Error
	if !errors.As(err, &lerr) {
		tb.Fatalf("error %q (%T) is not a *loader.Error", err, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "loader: ") || strings.ContainsAny(msg, "\n\r") {
		tb.Fatalf("error %q is not one line starting with \"loader: \"", msg)
	}
	known := false
	for _, s := range []error{ErrNotKernel, ErrTruncated, ErrUnsupported, ErrInvalid, ErrTooLarge} {
		known = known || errors.Is(err, s)
	}
	if !known {
		tb.Fatalf("error %q wraps no package sentinel", msg)
	}
}

// testSeg describes one program header of a synthetic ELF.
type testSeg struct {
	typ   uint32
	paddr uint64
	data  []byte
	memsz uint64 // 0 means len(data)
	align uint64
}

// buildELF assembles a 64-bit x86-64 executable: header, program headers,
// then each segment's data in order.
func buildELF(entry uint64, segs ...testSeg) []byte {
	phoff := uint64(elfHeaderSize)
	dataOff := phoff + uint64(len(segs))*elfPhdrSize
	b := make([]byte, dataOff)
	copy(b, elfMagic)
	b[4], b[5], b[6] = elfClass64, elfDataLSB, elfVersion
	le.PutUint16(b[16:], elfTypeExec)
	le.PutUint16(b[18:], elfMachineX64)
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], entry)
	le.PutUint64(b[32:], phoff)
	le.PutUint16(b[52:], elfHeaderSize)
	le.PutUint16(b[54:], elfPhdrSize)
	le.PutUint16(b[56:], uint16(len(segs)))
	for i, s := range segs {
		ph := b[phoff+uint64(i)*elfPhdrSize:]
		memsz := s.memsz
		if memsz == 0 {
			memsz = uint64(len(s.data))
		}
		le.PutUint32(ph[0:], s.typ)
		le.PutUint64(ph[8:], uint64(len(b)))
		le.PutUint64(ph[16:], s.paddr)
		le.PutUint64(ph[24:], s.paddr)
		le.PutUint64(ph[32:], uint64(len(s.data)))
		le.PutUint64(ph[40:], memsz)
		le.PutUint64(ph[48:], s.align)
		b = append(b, s.data...)
	}
	return b
}

// phdr returns program header i of an ELF built by buildELF.
func phdr(b []byte, i int) []byte {
	o := elfHeaderSize + i*elfPhdrSize
	return b[o : o+elfPhdrSize]
}

// note encodes one ELF note with 4-byte padding.
func note(name string, typ uint32, desc []byte) []byte {
	pad := func(n int) int { return (n + 3) &^ 3 }
	nm := name + "\x00"
	b := make([]byte, 12+pad(len(nm))+pad(len(desc)))
	le.PutUint32(b[0:], uint32(len(nm)))
	le.PutUint32(b[4:], uint32(len(desc)))
	le.PutUint32(b[8:], typ)
	copy(b[12:], nm)
	copy(b[12+pad(len(nm)):], desc)
	return b
}

// pvhNote is a Xen PHYS32_ENTRY note holding entry as a 32-bit value.
func pvhNote(entry uint32) []byte {
	d := make([]byte, 4)
	le.PutUint32(d, entry)
	return note("Xen", xenNotePhys32Entry, d)
}

// pattern returns n bytes of a recognizable non-zero pattern.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed | 1
	}
	return b
}

// bzOpts are the header fields of a synthetic bzImage.
type bzOpts struct {
	setupSects  uint8
	version     uint16
	loadflags   uint8
	xloadflags  uint16
	relocatable uint8
	alignment   uint32
	cmdlineSize uint32
	initrdMax   uint32
	pref        uint64
	initSize    uint32
	kernel      int // bytes in the protected-mode part
}

// defaultBz fits a 16 MiB guest: runs at 2 MiB, needs 4 MiB.
func defaultBz() bzOpts {
	return bzOpts{
		setupSects: 4, version: 0x020f, loadflags: loadedHigh, xloadflags: xlfKernel64 | 2,
		relocatable: 1, alignment: 0x200000, cmdlineSize: 0x7ff, initrdMax: 0x7fffffff,
		pref: 0x200000, initSize: 0x400000, kernel: 8192,
	}
}

// buildBz assembles a bzImage with the given header and a patterned kernel.
func buildBz(o bzOpts) []byte {
	sects := int(o.setupSects)
	if sects == 0 {
		sects = defaultSetupSects
	}
	setup := (sects + 1) * setupSectorSize
	b := make([]byte, setup, setup+o.kernel)
	b[hdrSetupSects] = o.setupSects
	le.PutUint16(b[hdrBootFlag:], bootFlagMagic)
	b[0x200] = 0xeb
	b[hdrJumpLen] = 0x6a // header ends at 0x26c
	le.PutUint32(b[hdrMagic:], hdrSMagic)
	le.PutUint16(b[hdrVersion:], o.version)
	b[hdrLoadflags] = o.loadflags
	le.PutUint32(b[hdrCode32Start:], x86.HighMemStart)
	le.PutUint32(b[hdrInitrdAddrMax:], o.initrdMax)
	le.PutUint32(b[hdrKernelAlignment:], o.alignment)
	b[hdrRelocatable] = o.relocatable
	le.PutUint16(b[hdrXloadflags:], o.xloadflags)
	le.PutUint32(b[hdrCmdlineSize:], o.cmdlineSize)
	le.PutUint64(b[hdrPrefAddress:], o.pref)
	le.PutUint32(b[hdrInitSize:], o.initSize)
	return append(b, pattern(o.kernel, 3)...)
}

// fill writes v over [gpa, gpa+n) so tests can see what the loader clears.
func fill(tb testing.TB, m *guestmem.Memory, gpa, n uint64, v byte) {
	tb.Helper()
	s, err := m.Slice(gpa, n)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range s {
		s[i] = v
	}
}

// guestBytes reads n bytes of guest memory at gpa.
func guestBytes(tb testing.TB, m *guestmem.Memory, gpa, n uint64) []byte {
	tb.Helper()
	b := make([]byte, n)
	if err := m.ReadAt(b, gpa); err != nil {
		tb.Fatal(err)
	}
	return b
}
