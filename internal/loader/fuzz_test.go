package loader

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// fuzzRAM is the guest RAM size of the fuzz targets: small, so a hostile
// memsz cannot make an iteration touch much memory, yet large enough for the
// real kernels' addresses (16 MiB) and the bzImage's init_size.
const fuzzRAM = 32 * mib

// readHead returns up to n leading bytes of a file, or nil.
func readHead(path string, n int) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b := make([]byte, n)
	m, _ := io.ReadFull(f, b)
	return b[:m]
}

// shrunkVmlinux rebuilds the real vmlinux's ELF header and program headers
// into a small file: the same segment types and addresses, the first bytes
// of each segment (all of the notes) and small memory sizes.
func shrunkVmlinux() []byte {
	head := readHead(realVmlinux, 64<<10)
	if len(head) < elfHeaderSize {
		return nil
	}
	phoff, phnum := le.Uint64(head[32:]), int(le.Uint16(head[56:]))
	if phoff+uint64(phnum)*elfPhdrSize > uint64(len(head)) || phnum > maxPhnum {
		return nil
	}
	f, err := os.Open(realVmlinux)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := bytes.Clone(head[:phoff+uint64(phnum)*elfPhdrSize])
	for i := range phnum {
		ph := out[phoff+uint64(i)*elfPhdrSize:]
		n := min(le.Uint64(ph[32:]), 256)
		data := make([]byte, n)
		if _, err := f.ReadAt(data, int64(le.Uint64(ph[8:]))); err != nil {
			return nil
		}
		le.PutUint64(ph[8:], uint64(len(out)))
		le.PutUint64(ph[32:], n)
		if le.Uint32(ph[0:]) == ptLoad {
			le.PutUint64(ph[40:], min(le.Uint64(ph[40:]), 4096))
		}
		out = append(out, data...)
	}
	return out
}

// shrunkBzImage is the real bzImage's boot sector and setup header, with
// setup_sects cut to 1, followed by the first KiB of its kernel.
func shrunkBzImage() []byte {
	head := readHead(realBzImage, hdrMaxEnd)
	if len(head) < hdrMaxEnd {
		return nil
	}
	sects := int(head[hdrSetupSects])
	if sects == 0 {
		sects = defaultSetupSects
	}
	kernel := readHead(realBzImage, (sects+1)*setupSectorSize+1024)
	if len(kernel) < (sects+1)*setupSectorSize+1024 {
		return nil
	}
	out := make([]byte, 2*setupSectorSize)
	copy(out, head)
	out[hdrSetupSects] = 1
	return append(out, kernel[(sects+1)*setupSectorSize:]...)
}

// fuzzMem maps the fuzz guest once per target.
func fuzzMem(f *testing.F) *guestmem.Memory {
	m, err := guestmem.New(x86.RAMRegions(fuzzRAM), guestmem.Backing{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Close() })
	return m
}

// exercise runs the whole load sequence on one image and checks the
// invariants every successful load must keep.
func exercise(t *testing.T, mem *guestmem.Memory, r io.ReaderAt, size int64) {
	k, err := LoadKernel(mem, r, size)
	if err != nil {
		checkErrShape(t, err)
		return
	}
	if k.LoadAddr < x86.HighMemStart || k.Entry < k.LoadAddr || k.Entry >= k.End ||
		k.End > fuzzRAM || k.End%pageSize != 0 {
		t.Fatalf("implausible kernel: load %#x entry %#x end %#x", k.LoadAddr, k.Entry, k.End)
	}
	if k.Protocol == ProtocolPVH && k.Entry >= fourGiB {
		t.Fatalf("PVH entry %#x above 4 GiB", k.Entry)
	}
	bi := BootInfo{Cmdline: "console=ttyS0", E820: x86.E820(mem)}
	initrd := bytes.Repeat([]byte{0x5a}, 5000)
	gpa, err := LoadInitrd(mem, k, bytes.NewReader(initrd), int64(len(initrd)))
	if err == nil {
		if gpa < k.End || gpa+uint64(len(initrd)) > fuzzRAM {
			t.Fatalf("initrd at %#x overlaps the kernel (end %#x) or leaves RAM", gpa, k.End)
		}
		bi.InitrdGPA, bi.InitrdSize = gpa, uint64(len(initrd))
	} else {
		checkErrShape(t, err)
	}
	if _, err := WriteBootInfo(mem, k, bi); err != nil {
		checkErrShape(t, err)
	}
}

// FuzzLoadKernel feeds arbitrary bytes to the loader as a kernel file.
// sizeSlack makes the declared size exceed the data, as a file shrinking
// under the loader would.
func FuzzLoadKernel(f *testing.F) {
	f.Add([]byte("this is a text file, not a kernel\n"), uint8(0))
	f.Add([]byte{}, uint8(0))
	// Small seeds keep the fuzzer's minimization of new inputs quick.
	elfSeed := func(notes ...[]byte) []byte {
		segs := []testSeg{
			{typ: ptLoad, paddr: 2 * mib, data: pattern(64, 1)},
			{typ: ptLoad, paddr: 3 * mib, data: pattern(32, 2), memsz: 0x3000},
		}
		for _, n := range notes {
			segs = append(segs, testSeg{typ: ptNote, data: n, align: 4})
		}
		return buildELF(2*mib+8, segs...)
	}
	bz := defaultBz()
	bz.setupSects, bz.kernel = 1, 0x240
	f.Add(elfSeed(pvhNote(2*mib+16)), uint8(0))
	f.Add(elfSeed(note("Linux", 1, []byte{1}), pvhNote(3*mib)), uint8(0))
	f.Add(elfSeed(), uint8(9))
	f.Add(buildBz(bz), uint8(0))
	f.Add(buildBz(bz)[:0x240], uint8(0))
	if b := shrunkVmlinux(); b != nil {
		f.Add(b, uint8(0))
		f.Add(b[:len(b)/2], uint8(0))
	}
	if b := readHead(realVmlinux, 4096); b != nil {
		f.Add(b, uint8(0))
	}
	if b := shrunkBzImage(); b != nil {
		f.Add(b, uint8(0))
		f.Add(b[:0x300], uint8(0))
	}
	mem := fuzzMem(f)
	f.Fuzz(func(t *testing.T, data []byte, sizeSlack uint8) {
		exercise(t, mem, bytes.NewReader(data), int64(len(data))+int64(sizeSlack))
	})
}

// FuzzBzImageHeader mutates only the setup header of an otherwise valid
// bzImage, to reach the checks behind the magic numbers quickly.
func FuzzBzImageHeader(f *testing.F) {
	bz := defaultBz()
	bz.setupSects, bz.kernel = 1, 0x240
	tmpl := buildBz(bz)
	f.Add(bytes.Clone(tmpl[hdrStart:hdrMaxEnd]))
	if b := readHead(realBzImage, hdrMaxEnd); len(b) == hdrMaxEnd {
		f.Add(bytes.Clone(b[hdrStart:]))
	}
	bz.version = 0x0206
	f.Add(bytes.Clone(buildBz(bz)[hdrStart:hdrMaxEnd]))
	mem := fuzzMem(f)
	f.Fuzz(func(t *testing.T, hdr []byte) {
		img := bytes.Clone(tmpl)
		copy(img[hdrStart:hdrMaxEnd], hdr)
		exercise(t, mem, bytes.NewReader(img), int64(len(img)))
	})
}
