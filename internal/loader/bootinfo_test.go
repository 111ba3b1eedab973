package loader

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/guestmem"
)

func u16(tb testing.TB, m *guestmem.Memory, gpa uint64) uint16 {
	tb.Helper()
	v, err := m.Uint16(gpa)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func u32(tb testing.TB, m *guestmem.Memory, gpa uint64) uint32 {
	tb.Helper()
	v, err := m.Uint32(gpa)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func u64(tb testing.TB, m *guestmem.Memory, gpa uint64) uint64 {
	tb.Helper()
	v, err := m.Uint64(gpa)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// checkCmdline verifies the NUL-terminated command line in guest memory.
func checkCmdline(tb testing.TB, m *guestmem.Memory, want string) {
	tb.Helper()
	got := guestBytes(tb, m, x86.CmdlineStart, uint64(len(want))+1)
	if string(got) != want+"\x00" {
		tb.Errorf("command line %q, want %q with a NUL", got, want)
	}
}

func TestLayoutFits(t *testing.T) {
	regions := []struct {
		name       string
		start, end uint64
	}{
		{"hvm_start_info", x86.PVHInfoStart, x86.PVHInfoStart + siSize},
		{"modlist", x86.PVHModlistStart, x86.PVHModlistStart + modlistEntrySize},
		{"memmap", x86.PVHMemmapStart, x86.PVHMemmapStart + x86.PVHMemmapMax*memmapEntrySize},
		{"boot_params", x86.ZeroPageStart, x86.ZeroPageStart + bpSize},
		{"cmdline", x86.CmdlineStart, x86.CmdlineStart + x86.CmdlineMax},
	}
	for i := 1; i < len(regions); i++ {
		if a, b := regions[i-1], regions[i]; a.end > b.start {
			t.Errorf("%s (%#x-%#x) overlaps %s at %#x", a.name, a.start, a.end, b.name, b.start)
		}
	}
	if end := regions[len(regions)-1].end; end > x86.EBDAStart {
		t.Errorf("boot data ends at %#x, past the EBDA at %#x", end, x86.EBDAStart)
	}
	if end := bpE820Table + e820MaxZeroPage*e820EntrySize; end != 0xcd0 { // _pad8 in bootparam.h
		t.Errorf("e820 table ends at %#x, want 0xcd0", end)
	}
}

func TestWriteBootInfoPVH(t *testing.T) {
	mem := newMem(t, 128*mib)
	fill(t, mem, x86.PVHInfoStart, 0x1000, 0xaa)
	k := &Kernel{Protocol: ProtocolPVH, Format: FormatELF, Entry: 0x1000500, End: 32 * mib}
	e820 := x86.E820(mem)
	bi := BootInfo{Cmdline: "console=ttyS0 panic=-1", InitrdGPA: 100 * mib, InitrdSize: 12345, E820: e820}
	arg, err := WriteBootInfo(mem, k, bi)
	if err != nil {
		t.Fatal(err)
	}
	if arg != x86.PVHInfoStart {
		t.Errorf("boot argument %#x, want %#x", arg, x86.PVHInfoStart)
	}
	si := uint64(x86.PVHInfoStart)
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"magic", uint64(u32(t, mem, si+siMagic)), 0x336ec578},
		{"version", uint64(u32(t, mem, si+siVersion)), 1},
		{"flags", uint64(u32(t, mem, si+siFlags)), 0},
		{"nr_modules", uint64(u32(t, mem, si+siNrModules)), 1},
		{"modlist_paddr", u64(t, mem, si+siModlistPaddr), x86.PVHModlistStart},
		{"cmdline_paddr", u64(t, mem, si+siCmdlinePaddr), x86.CmdlineStart},
		{"rsdp_paddr", u64(t, mem, si+siRsdpPaddr), 0},
		{"memmap_paddr", u64(t, mem, si+siMemmapPaddr), x86.PVHMemmapStart},
		{"memmap_entries", uint64(u32(t, mem, si+siMemmapEntries)), uint64(len(e820))},
		{"reserved", uint64(u32(t, mem, si+52)), 0},
		{"module paddr", u64(t, mem, x86.PVHModlistStart), 100 * mib},
		{"module size", u64(t, mem, x86.PVHModlistStart+8), 12345},
		{"module cmdline", u64(t, mem, x86.PVHModlistStart+16), 0},
		{"module reserved", u64(t, mem, x86.PVHModlistStart+24), 0},
	} {
		if f.got != f.want {
			t.Errorf("%s = %#x, want %#x", f.name, f.got, f.want)
		}
	}
	for i, e := range e820 {
		o := uint64(x86.PVHMemmapStart + i*memmapEntrySize)
		got := x86.E820Entry{Addr: u64(t, mem, o), Size: u64(t, mem, o+8), Type: u32(t, mem, o+16)}
		if got != e || u32(t, mem, o+20) != 0 {
			t.Errorf("memmap[%d] = %+v reserved %#x, want %+v", i, got, u32(t, mem, o+20), e)
		}
	}
	checkCmdline(t, mem, bi.Cmdline)

	// Without an initrd there is no module list.
	bi.InitrdSize = 0
	if _, err := WriteBootInfo(mem, k, bi); err != nil {
		t.Fatal(err)
	}
	if n, p := u32(t, mem, si+siNrModules), u64(t, mem, si+siModlistPaddr); n != 0 || p != 0 {
		t.Errorf("nr_modules %d modlist_paddr %#x without an initrd, want 0 0", n, p)
	}
}

// checkLoaderFields verifies the boot_params fields every Linux64 boot sets.
func checkLoaderFields(t *testing.T, mem *guestmem.Memory, bi BootInfo) {
	t.Helper()
	zp := uint64(x86.ZeroPageStart)
	b := guestBytes(t, mem, zp, bpSize)
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"boot_flag", uint64(le.Uint16(b[hdrBootFlag:])), 0xaa55},
		{"header", uint64(le.Uint32(b[hdrMagic:])), hdrSMagic},
		{"type_of_loader", uint64(b[hdrTypeOfLoader]), 0xff},
		{"loadflags LOADED_HIGH|CAN_USE_HEAP", uint64(b[hdrLoadflags] & (loadedHigh | canUseHeap)), loadedHigh | canUseHeap},
		{"heap_end_ptr", uint64(le.Uint16(b[hdrHeapEndPtr:])), 0xfe00},
		{"cmd_line_ptr", uint64(le.Uint32(b[hdrCmdLinePtr:])), x86.CmdlineStart},
		{"ext_cmd_line_ptr", uint64(le.Uint32(b[bpExtCmdLinePtr:])), 0},
		{"ramdisk", uint64(le.Uint32(b[hdrRamdiskImage:])) | uint64(le.Uint32(b[bpExtRamdiskImage:]))<<32, bi.InitrdGPA},
		{"ramdisk_size", uint64(le.Uint32(b[hdrRamdiskSize:])) | uint64(le.Uint32(b[bpExtRamdiskSize:]))<<32, bi.InitrdSize},
		{"e820_entries", uint64(b[bpE820Entries]), uint64(len(bi.E820))},
		{"sentinel", uint64(b[0x1ef]), 0},
		{"setup_data", le.Uint64(b[hdrSetupData:]), 0},
	} {
		if f.got != f.want {
			t.Errorf("%s = %#x, want %#x", f.name, f.got, f.want)
		}
	}
	if le.Uint16(b[hdrVersion:]) < minBootProtocol {
		t.Errorf("version %#x is not a 64-bit boot protocol version", le.Uint16(b[hdrVersion:]))
	}
	for i, e := range bi.E820 {
		o := bpE820Table + i*e820EntrySize
		got := x86.E820Entry{Addr: le.Uint64(b[o:]), Size: le.Uint64(b[o+8:]), Type: le.Uint32(b[o+16:])}
		if got != e {
			t.Errorf("e820_table[%d] = %+v, want %+v", i, got, e)
		}
	}
	if tail := b[bpE820Table+len(bi.E820)*e820EntrySize:]; !bytes.Equal(tail, make([]byte, len(tail))) {
		t.Error("stale bytes after the e820 table: the zero page was not cleared")
	}
	checkCmdline(t, mem, bi.Cmdline)
}

func TestWriteBootInfoLinux64ELF(t *testing.T) {
	mem := newMem(t, 128*mib)
	fill(t, mem, x86.ZeroPageStart, bpSize, 0xaa)
	k := &Kernel{Protocol: ProtocolLinux64, Format: FormatELF, Entry: 0x1000000, End: 32 * mib}
	bi := BootInfo{Cmdline: "console=ttyS0", InitrdGPA: 100 * mib, InitrdSize: 4096, E820: x86.E820(mem)}
	arg, err := WriteBootInfo(mem, k, bi)
	if err != nil {
		t.Fatal(err)
	}
	if arg != x86.ZeroPageStart {
		t.Errorf("boot argument %#x, want %#x", arg, x86.ZeroPageStart)
	}
	checkLoaderFields(t, mem, bi)
	if got := u32(t, mem, x86.ZeroPageStart+hdrKernelAlignment); got != 0x1000000 {
		t.Errorf("kernel_alignment %#x, want 0x1000000", got)
	}
	if got := u16(t, mem, x86.ZeroPageStart+hdrVersion); got != elfBootVersion {
		t.Errorf("version %#x, want %#x", got, elfBootVersion)
	}
}

func TestWriteBootInfoLinux64BzImage(t *testing.T) {
	mem := newMem(t, 128*mib)
	img := buildBz(defaultBz())
	img[hdrLoadflags] |= 1 << 5 // QUIET_FLAG must survive
	k, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	fill(t, mem, x86.ZeroPageStart, bpSize, 0xaa)
	bi := BootInfo{Cmdline: strings.Repeat("x", 0x7ff), E820: x86.E820(mem)}
	if _, err := WriteBootInfo(mem, k, bi); err != nil {
		t.Fatal(err)
	}
	checkLoaderFields(t, mem, bi)
	zp := uint64(x86.ZeroPageStart)
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"version", uint64(u16(t, mem, zp+hdrVersion)), 0x020f},
		{"code32_start", uint64(u32(t, mem, zp+hdrCode32Start)), 0x100000},
		{"init_size", uint64(u32(t, mem, zp+hdrInitSize)), 0x400000},
		{"cmdline_size", uint64(u32(t, mem, zp+hdrCmdlineSize)), 0x7ff},
		{"quiet flag", uint64(guestBytes(t, mem, zp+hdrLoadflags, 1)[0] & (1 << 5)), 1 << 5},
		{"after header", u64(t, mem, zp+0x26c), 0},
	} {
		if f.got != f.want {
			t.Errorf("%s = %#x, want %#x", f.name, f.got, f.want)
		}
	}

	bi.Cmdline += "y"
	_, err = WriteBootInfo(mem, k, bi)
	checkErr(t, err, ErrTooLarge)
	if want := "2048 bytes, longer than the 2047"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestWriteBootInfoInitrdAbove4G(t *testing.T) {
	mem := newMem(t, x86.MMIOHoleStart+64*mib)
	k := &Kernel{Protocol: ProtocolLinux64, Format: FormatELF, Entry: 0x1000000, End: 32 * mib}
	bi := BootInfo{InitrdGPA: x86.MMIOHoleEnd + 0x123000, InitrdSize: 8 * mib, E820: x86.E820(mem)}
	if _, err := WriteBootInfo(mem, k, bi); err != nil {
		t.Fatal(err)
	}
	zp := uint64(x86.ZeroPageStart)
	if lo, hi := u32(t, mem, zp+hdrRamdiskImage), u32(t, mem, zp+bpExtRamdiskImage); lo != 0x123000 || hi != 1 {
		t.Errorf("ramdisk_image %#x ext %#x, want 0x123000 and 1", lo, hi)
	}
	checkLoaderFields(t, mem, bi)
}

func TestWriteBootInfoErrors(t *testing.T) {
	mem := newMem(t, 128*mib)
	e820 := x86.E820(mem)
	pvh := &Kernel{Protocol: ProtocolPVH, Format: FormatELF}
	lin := &Kernel{Protocol: ProtocolLinux64, Format: FormatELF}
	many := func(n int) []x86.E820Entry {
		m := make([]x86.E820Entry, n)
		for i := range m {
			m[i] = x86.E820Entry{Addr: uint64(i) * mib, Size: mib, Type: x86.E820RAM}
		}
		return m
	}
	tests := []struct {
		name string
		k    *Kernel
		bi   BootInfo
		want error
	}{
		{"nil kernel", nil, BootInfo{E820: e820}, ErrInvalid},
		{"cmdline too long", pvh, BootInfo{Cmdline: strings.Repeat("a", x86.CmdlineMax), E820: e820}, ErrTooLarge},
		{"cmdline with NUL", pvh, BootInfo{Cmdline: "a\x00b", E820: e820}, ErrInvalid},
		{"no memory map", lin, BootInfo{}, ErrInvalid},
		{"initrd outside RAM", lin, BootInfo{InitrdGPA: 127 * mib, InitrdSize: 2 * mib, E820: e820}, ErrInvalid},
		{"initrd wraps", lin, BootInfo{InitrdGPA: 1<<64 - 4096, InitrdSize: 8192, E820: e820}, ErrInvalid},
		{"PVH memmap too long", pvh, BootInfo{E820: many(x86.PVHMemmapMax + 1)}, ErrTooLarge},
		{"e820 too long", lin, BootInfo{E820: many(129)}, ErrTooLarge},
		{"bzImage without header", &Kernel{Protocol: ProtocolLinux64, Format: FormatBzImage}, BootInfo{E820: e820}, ErrInvalid},
		{"unknown protocol", &Kernel{Protocol: 7}, BootInfo{E820: e820}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := WriteBootInfo(mem, tc.k, tc.bi)
			checkErr(t, err, tc.want)
		})
	}
	if _, err := WriteBootInfo(mem, pvh, BootInfo{Cmdline: strings.Repeat("a", x86.CmdlineMax-1), E820: many(x86.PVHMemmapMax)}); err != nil {
		t.Errorf("longest command line and memory map: %v", err)
	}
	if _, err := WriteBootInfo(mem, lin, BootInfo{E820: many(128)}); err != nil {
		t.Errorf("128 e820 entries: %v", err)
	}
}
