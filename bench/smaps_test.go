package main

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// sampleSmaps has a binary, a heap, a 128 MiB anonymous guest RAM mapping,
// a path with spaces and a hugetlbfs mapping.
const sampleSmaps = `55d0c0000000-55d0c0200000 r-xp 00000000 fe:01 1234                       /usr/bin/qemu-system-x86_64
Size:               2048 kB
KernelPageSize:        4 kB
Rss:                1500 kB
Pss:                1500 kB
Private_Clean:      1500 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
THPeligible:    0
VmFlags: rd ex mr mw me
55d0c1000000-55d0c1400000 rw-p 00000000 00:00 0                          [heap]
Size:               4096 kB
Rss:                 800 kB
VmFlags: rd wr mr mw me ac
7f0000000000-7f0008000000 rw-p 00000000 00:00 0 
Size:             131072 kB
Rss:               20480 kB
AnonHugePages:      2048 kB
VmFlags: rd wr mr mw me ac
7f0010000000-7f0010001000 r--p 00000000 fe:01 99                         /tmp/a dir/my file
Size:                  4 kB
Rss:                   4 kB
7f0020000000-7f0020400000 rw-s 00000000 00:0f 7                          /anon_hugepage (deleted)
Size:               4096 kB
Rss:                   0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:    2048 kB
`

func TestParseSmaps(t *testing.T) {
	maps, err := parseSmaps(strings.NewReader(sampleSmaps))
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 5 {
		t.Fatalf("%d mappings, want 5", len(maps))
	}
	want := []mapping{
		{Start: 0x55d0c0000000, End: 0x55d0c0200000, Perms: "r-xp", Path: "/usr/bin/qemu-system-x86_64", Size: 2048 << 10, Rss: 1500 << 10},
		{Start: 0x55d0c1000000, End: 0x55d0c1400000, Perms: "rw-p", Path: "[heap]", Size: 4096 << 10, Rss: 800 << 10},
		{Start: 0x7f0000000000, End: 0x7f0008000000, Perms: "rw-p", Path: "", Size: 128 << 20, Rss: 20 << 20},
		{Start: 0x7f0010000000, End: 0x7f0010001000, Perms: "r--p", Path: "/tmp/a dir/my file", Size: 4 << 10, Rss: 4 << 10},
		{Start: 0x7f0020000000, End: 0x7f0020400000, Perms: "rw-s", Path: "/anon_hugepage (deleted)", Size: 4 << 20, Rss: 2 << 20},
	}
	for i := range want {
		if maps[i] != want[i] {
			t.Errorf("mapping %d:\n got %+v\nwant %+v", i, maps[i], want[i])
		}
	}
}

func TestSplitUsage(t *testing.T) {
	maps, err := parseSmaps(strings.NewReader(sampleSmaps))
	if err != nil {
		t.Fatal(err)
	}
	u, err := splitUsage(maps, 128<<20)
	if err != nil {
		t.Fatal(err)
	}
	total := uint64(1500+800+20480+4+2048) << 10
	if u.Total != total || u.Guest != 20<<20 || u.Overhead != total-20<<20 || u.Ambiguous {
		t.Errorf("usage %+v, want total %d guest %d", u, total, 20<<20)
	}
	if len(u.Top) != 4 || u.Top[0].Path != "/anon_hugepage (deleted)" || u.Top[1].Rss != 1500<<10 {
		t.Errorf("top mappings %+v, want the four non-guest ones, largest first", u.Top)
	}
}

func TestSplitUsageAmbiguous(t *testing.T) {
	maps := []mapping{
		{Path: "", Size: 64 << 20, Rss: 3 << 20},   // e.g. a Go heap arena
		{Path: "", Size: 64 << 20, Rss: 30 << 20},  // guest RAM
		{Path: "/bin/x", Size: 64 << 20, Rss: 100}, // a file: never guest RAM
	}
	u, err := splitUsage(maps, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Ambiguous || u.Guest != 30<<20 || u.Overhead != 3<<20+100 {
		t.Errorf("usage %+v: want ambiguous, guest 30 MiB, overhead 3 MiB + 100", u)
	}
}

func TestSplitUsageNamedAnonymous(t *testing.T) {
	maps := []mapping{{Path: "[anon:guest-ram]", Size: 256 << 20, Rss: 7 << 20}, {Path: "[stack]", Size: 132 << 10, Rss: 16 << 10}}
	u, err := splitUsage(maps, 256<<20)
	if err != nil || u.Guest != 7<<20 || u.Overhead != 16<<10 {
		t.Errorf("usage %+v, err %v", u, err)
	}
}

// Guest RAM merged with a neighbouring anonymous mapping (as a glibc malloc
// arena placed right after it is): the extra bytes count as overhead.
func TestSplitUsageMerged(t *testing.T) {
	maps := []mapping{
		{Path: "", Perms: "---p", Size: 128<<20 + 4096, Rss: 0},           // reservation: not read-write
		{Path: "", Perms: "rw-p", Size: 128<<20 + 132<<10, Rss: 14 << 20}, // guest RAM + 132 KiB of arena
		{Path: "", Perms: "rw-p", Size: 160 << 20, Rss: 1 << 20},          // larger: not taken
		{Path: "[heap]", Perms: "rw-p", Size: 129 << 20, Rss: 2 << 20},    // not anonymous
	}
	u, err := splitUsage(maps, 128<<20)
	if err != nil {
		t.Fatal(err)
	}
	if u.Merged != 132<<10 || u.Guest != 14<<20-132<<10 || u.Overhead != 3<<20+132<<10 {
		t.Errorf("usage %+v: want 132 KiB merged and counted as overhead", u)
	}
}

func TestSplitUsageNoGuest(t *testing.T) {
	maps := []mapping{{Path: "", Perms: "rw-p", Size: 64 << 20, Rss: 1}, {Path: "", Perms: "rw-p", Size: 256 << 20, Rss: 1}}
	if _, err := splitUsage(maps, 128<<20); !errors.Is(err, ErrNoGuestRAM) {
		t.Errorf("err %v, want ErrNoGuestRAM", err)
	}
}

func TestParseSmapsErrors(t *testing.T) {
	for name, text := range map[string]string{
		"field first":   "Rss: 4 kB\n",
		"short header":  "7f00-7f01 rw-p 0\n",
		"bad range":     "7f00+7f01 rw-p 0 00:00 0\n",
		"reverse range": "7f01-7f00 rw-p 0 00:00 0\n",
		"non-hex":       "7g00-7f01 rw-p 0 00:00 0\n",
		"bad size":      "7f00-7f01 rw-p 0 00:00 0\nRss: many kB\n",
		"no unit":       "7f00-7f01 rw-p 0 00:00 0\nSize: 4\n",
		"huge size":     "7f00-7f01 rw-p 0 00:00 0\nSize: 99999999999999999 kB\n",
	} {
		if _, err := parseSmaps(strings.NewReader(text)); !errors.Is(err, ErrSmapsSyntax) {
			t.Errorf("%s: err %v, want ErrSmapsSyntax", name, err)
		}
	}
}

// The running kernel's own format parses, with sizes that match the
// address ranges.
func TestParseOwnSmaps(t *testing.T) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	maps, err := parseSmaps(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) < 5 {
		t.Fatalf("only %d mappings in /proc/self/smaps", len(maps))
	}
	var rss uint64
	for _, m := range maps {
		if m.End-m.Start != m.Size && !strings.Contains(m.Path, "hugepage") {
			t.Errorf("mapping %+v: Size differs from its address range", m)
		}
		rss += m.Rss
	}
	if rss == 0 {
		t.Error("no resident memory at all")
	}
}

func FuzzParseSmaps(f *testing.F) {
	f.Add(sampleSmaps)
	f.Add("7f00-7f01 rw-p 0 00:00 0\nRss: 4 kB\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		maps, err := parseSmaps(strings.NewReader(text))
		if err != nil {
			return
		}
		for _, m := range maps {
			if m.End < m.Start {
				t.Fatalf("mapping %+v ends before it starts", m)
			}
		}
		if u, err := splitUsage(maps, 4<<10); err == nil && u.Guest+u.Overhead != u.Total {
			t.Fatalf("usage %+v does not add up", u)
		}
	})
}
