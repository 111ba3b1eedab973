package hostmem

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const sampleSmaps = `55b941fcf000-55b941fd1000 r--p 00000000 fe:00 247278                     /usr/bin/head
Size:                  8 kB
Rss:                   8 kB
VmFlags: rd mr mw me
7f0000000000-7f0008000000 rw-p 00000000 00:00 0
Size:             131072 kB
KernelPageSize:        4 kB
Rss:               65536 kB
Anonymous:         65536 kB
KSM:                1024 kB
AnonHugePages:     61440 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
THPeligible:           1
VmFlags: rd wr mr mw me ac hg mg
7f0008000000-7f0010000000 rw-p 00000000 00:00 0
Size:             131072 kB
KernelPageSize:     2048 kB
Rss:                   0 kB
Private_Hugetlb:    4096 kB
VmFlags: rd wr mr mw me ac hg ht
7f0010000000-7f0010001000 rw-p 00000000 00:00 0
Rss:                   4 kB
garbage line
Rss: lots kB
Rss: 99999999999999999999 kB
`

func TestParseSmaps(t *testing.T) {
	ranges := []Range{{0x7f0000000000, 0x7f0010000000}, {0x7f0010000000, 0x7f0010001000}, {1, 2}}
	u, err := ParseSmaps(strings.NewReader(sampleSmaps), ranges)
	if err != nil {
		t.Fatal(err)
	}
	g := u[0]
	if g.Mappings != 2 || g.Size != 256<<20 || g.Rss != 64<<20 || g.Anonymous != 64<<20 || g.KSM != 1<<20 ||
		g.AnonHugePages != 60<<20 || g.Hugetlb() != 4<<20 || g.KernelPageSize != 2<<20 || g.Flags != "rd wr hg" {
		t.Errorf("guest range %+v", g)
	}
	if u[1].Mappings != 1 || u[1].Rss != 4<<10 {
		t.Errorf("second range %+v (malformed lines must be skipped)", u[1])
	}
	if u[2] != (Usage{}) {
		t.Errorf("empty range %+v", u[2])
	}
	// A line longer than any real one is an error, not a panic.
	long := "7f0000000000-7f0008000000 rw-p " + strings.Repeat("x", maxLine+1) + "\n"
	if _, err := ParseSmaps(strings.NewReader(long), ranges); err == nil {
		t.Error("an over-long line was accepted")
	}
}

// TestProcessSmapsSeesOwnMapping maps memory with MADV_HUGEPAGE and
// MADV_MERGEABLE and finds it, resident, in this process's smaps.
func TestProcessSmapsSeesOwnMapping(t *testing.T) {
	const size = 8 << 20
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := unix.Madvise(mem, unix.MADV_MERGEABLE); err != nil {
		t.Skipf("no KSM: %v", err)
	}
	for i := 0; i < size; i += 4096 {
		mem[i] = 1
	}
	start := addrOf(mem)
	u, err := ProcessSmaps(0, []Range{{start, start + size}})
	if err != nil {
		t.Fatal(err)
	}
	if u[0].Mappings != 1 || u[0].Rss != size || !strings.Contains(u[0].Flags, "mg") {
		t.Errorf("own mapping: %+v", u[0])
	}
	if _, err := ProcessSmaps(-5, nil); err == nil {
		t.Error("smaps of pid -5 read")
	}
}

func TestKSM(t *testing.T) {
	dir := t.TempDir()
	for name, v := range map[string]string{"run": "1\n", "pages_shared": "10\n", "pages_sharing": "250\n", "full_scans": "x\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k := ReadKSM(dir)
	if !k.Available || k.Run != 1 || k.PagesShared != 10 || k.PagesSharing != 250 || k.FullScans != 0 {
		t.Errorf("ReadKSM = %+v", k)
	}
	if k := ReadKSM(filepath.Join(dir, "absent")); k.Available {
		t.Errorf("KSM found in a missing directory: %+v", k)
	}
	p, err := ParseKSMStat(strings.NewReader("ksm_rmap_items 12\nksm_zero_pages 3\nksm_merging_pages 7\nksm_process_profit -4096\nksm_merge_any: no\nbogus\nksm_merging_pages x\n"))
	if err != nil || p != (ProcessKSM{MergingPages: 7, ZeroPages: 3, RmapItems: 12, Profit: -4096}) {
		t.Errorf("ParseKSMStat = %+v, %v", p, err)
	}
	if _, err := ReadProcessKSM(0); err != nil {
		t.Logf("this kernel has no per-process KSM counters: %v", err)
	}
}

func TestHugePages(t *testing.T) {
	h := ParseMeminfo(strings.NewReader("MemTotal: 100 kB\nAnonHugePages:    4096 kB\nHugePages_Total:      8\nHugePages_Free:       6\nHugePages_Rsvd:       1\nHugepagesize:       2048 kB\nHugetlb: x kB\n"))
	if h.AnonHugePages != 4<<20 || h.HugetlbTotal != 8 || h.HugetlbFree != 6 || h.HugetlbReserved != 1 || h.HugetlbPageSize != 2<<20 {
		t.Errorf("ParseMeminfo = %+v", h)
	}
	for in, want := range map[string]string{"always [madvise] never": "madvise", "[always] madvise never": "always", "never": "never", "[broken": "[broken", "": ""} {
		if got := selected(in); got != want {
			t.Errorf("selected(%q) = %q, want %q", in, got, want)
		}
	}
	_ = ReadHugePages(THPDir)
}

func FuzzParseSmaps(f *testing.F) {
	f.Add([]byte(sampleSmaps))
	f.Add([]byte("0-ffffffffffffffff rw-p\nRss: 1 kB\nVmFlags: hg\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseSmaps(strings.NewReader(string(data)), []Range{{0, 1 << 47}, {0x7f0000000000, 0x7f0010000000}})
		if err == nil && len(u) != 2 {
			t.Fatalf("%d usages for 2 ranges", len(u))
		}
		ParseKSMStat(strings.NewReader(string(data)))
		ParseMeminfo(strings.NewReader(string(data)))
	})
}
