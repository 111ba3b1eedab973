package loader

import (
	"bytes"
	"debug/elf"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
)

// guestCmdline is the test guest's command line, or a stand-in.
func guestCmdline() string {
	b, err := os.ReadFile("/work/shared/guest/cmdline")
	if err != nil {
		return "console=ttyS0 panic=-1"
	}
	return strings.TrimSpace(string(b))
}

func TestRealVmlinux(t *testing.T) {
	img := readReal(t, realVmlinux)
	mem := newMem(t, 128*mib)
	k, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}

	// Cross-check against the standard library's ELF reader.
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if k.Protocol != ProtocolPVH || k.Format != FormatELF {
		t.Fatalf("protocol %v format %v, want pvh elf", k.Protocol, k.Format)
	}
	if k.ELFEntry != f.Entry {
		t.Errorf("ELF entry %#x, want e_entry %#x", k.ELFEntry, f.Entry)
	}
	if k.LoadAddr < x86.HighMemStart || k.Entry < k.LoadAddr || k.Entry >= k.End || k.End > 128*mib || k.End%pageSize != 0 {
		t.Errorf("implausible layout: load %#x entry %#x end %#x", k.LoadAddr, k.Entry, k.End)
	}
	var pvh uint64
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			want, err := io.ReadAll(p.Open())
			if err != nil {
				t.Fatal(err)
			}
			if got := guestBytes(t, mem, p.Paddr, p.Filesz); !bytes.Equal(got, want) {
				t.Errorf("segment at %#x differs from the file", p.Paddr)
			}
			if bss := guestBytes(t, mem, p.Paddr+p.Filesz, p.Memsz-p.Filesz); !bytes.Equal(bss, make([]byte, len(bss))) {
				t.Errorf("bss of segment at %#x not cleared", p.Paddr)
			}
		case elf.PT_NOTE:
			notes, err := io.ReadAll(p.Open())
			if err != nil {
				t.Fatal(err)
			}
			if i := bytes.Index(notes, []byte("Xen\x00")); i >= 8 && le.Uint32(notes[i-4:]) == xenNotePhys32Entry {
				pvh = uint64(le.Uint32(notes[i+4:]))
			}
		}
	}
	if pvh == 0 || k.Entry != pvh {
		t.Errorf("PVH entry %#x, want %#x from the note", k.Entry, pvh)
	}
	t.Logf("vmlinux: PVH entry %#x, 64-bit entry %#x, image %#x-%#x", k.Entry, k.ELFEntry, k.LoadAddr, k.End)

	initrd := pattern(3*mib+17, 5)
	gpa, err := LoadInitrd(mem, k, bytes.NewReader(initrd), int64(len(initrd)))
	if err != nil {
		t.Fatal(err)
	}
	if gpa < k.End || gpa+uint64(len(initrd)) > 128*mib {
		t.Errorf("initrd at %#x overlaps the kernel or leaves RAM", gpa)
	}
	bi := BootInfo{Cmdline: guestCmdline(), InitrdGPA: gpa, InitrdSize: uint64(len(initrd)), E820: x86.E820(mem)}
	arg, err := WriteBootInfo(mem, k, bi)
	if err != nil {
		t.Fatal(err)
	}
	if arg != x86.PVHInfoStart || u32(t, mem, arg) != pvhMagic || u64(t, mem, x86.PVHModlistStart) != gpa {
		t.Errorf("start_info at %#x: magic %#x, module at %#x", arg, u32(t, mem, arg), u64(t, mem, x86.PVHModlistStart))
	}
	checkCmdline(t, mem, bi.Cmdline)

	// The same kernel booted through its 64-bit entry and boot_params.
	k.Protocol, k.Entry = ProtocolLinux64, k.ELFEntry
	if _, err := WriteBootInfo(mem, k, bi); err != nil {
		t.Fatal(err)
	}
	checkLoaderFields(t, mem, bi)
}

func TestRealVmlinuxTooLarge(t *testing.T) {
	img := readReal(t, realVmlinux)
	mem := newMem(t, 8*mib)
	_, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
	checkErr(t, err, ErrTooLarge)
	t.Log(err)
}

func TestRealBzImage(t *testing.T) {
	img := readReal(t, realBzImage)
	mem := newMem(t, 128*mib)
	k, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if k.Protocol != ProtocolLinux64 || k.Format != FormatBzImage || k.Entry != 0x100200 {
		t.Fatalf("protocol %v format %v entry %#x, want linux64 bzimage 0x100200", k.Protocol, k.Format, k.Entry)
	}
	hdrEnd := 0x202 + int(img[hdrJumpLen])
	if !bytes.Equal(k.Setup, img[hdrStart:hdrEnd]) {
		t.Error("setup header not kept")
	}
	if k.CmdlineMax != uint64(le.Uint32(img[hdrCmdlineSize:])) || k.InitrdAddrMax != uint64(le.Uint32(img[hdrInitrdAddrMax:])) {
		t.Errorf("cmdline max %#x initrd max %#x disagree with the header", k.CmdlineMax, k.InitrdAddrMax)
	}
	runAt := max(le.Uint64(img[hdrPrefAddress:]), 2*mib)
	if minEnd := runAt + uint64(le.Uint32(img[hdrInitSize:])); k.End < minEnd || k.End > 128*mib {
		t.Errorf("end %#x, want at least %#x (runtime address + init_size)", k.End, minEnd)
	}
	sects := int(img[hdrSetupSects])
	if sects == 0 {
		sects = 4
	}
	payload := img[(sects+1)*512:]
	if got := guestBytes(t, mem, 0x100000, uint64(len(payload))); !bytes.Equal(got, payload) {
		t.Error("protected-mode kernel at 1 MiB differs from the file")
	}
	t.Logf("bzImage: protocol %#x, entry %#x, image %#x-%#x", le.Uint16(img[hdrVersion:]), k.Entry, k.LoadAddr, k.End)

	initrd := pattern(2*mib, 6)
	gpa, err := LoadInitrd(mem, k, bytes.NewReader(initrd), int64(len(initrd)))
	if err != nil {
		t.Fatal(err)
	}
	bi := BootInfo{Cmdline: guestCmdline(), InitrdGPA: gpa, InitrdSize: uint64(len(initrd)), E820: x86.E820(mem)}
	if _, err := WriteBootInfo(mem, k, bi); err != nil {
		t.Fatal(err)
	}
	checkLoaderFields(t, mem, bi)
	// Header bytes the loader does not own are passed through unchanged.
	zp := guestBytes(t, mem, x86.ZeroPageStart, bpSize)
	owned := map[int]int{hdrTypeOfLoader: 1, hdrLoadflags: 1, hdrCode32Start: 4, hdrRamdiskImage: 4,
		hdrRamdiskSize: 4, hdrHeapEndPtr: 2, hdrCmdLinePtr: 4, hdrSetupData: 8}
	for o := hdrStart; o < hdrEnd; o++ {
		if n, ok := owned[o]; ok {
			o += n - 1
			continue
		}
		if zp[o] != img[o] {
			t.Errorf("boot_params byte %#x = %#x, file has %#x", o, zp[o], img[o])
		}
	}

	_, err = WriteBootInfo(mem, k, BootInfo{Cmdline: strings.Repeat("a", int(k.CmdlineMax)+1), E820: bi.E820})
	checkErr(t, err, ErrTooLarge)
}
