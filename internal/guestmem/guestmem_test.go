package guestmem

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func newTest(t *testing.T, specs ...RegionSpec) *Memory {
	t.Helper()
	m, err := New(specs, Backing{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestBoundsChecks(t *testing.T) {
	m := newTest(t, RegionSpec{0, 1 << 20}, RegionSpec{4 << 20, 1 << 20})
	if m.Size() != 2<<20 {
		t.Fatalf("size %d", m.Size())
	}
	for _, c := range []struct {
		gpa, n uint64
		ok     bool
	}{
		{0, 1 << 20, true},
		{1<<20 - 4, 4, true},
		{1<<20 - 4, 5, false},      // runs off the first region
		{1 << 20, 1, false},        // in the hole
		{4 << 20, 16, true},        // second region
		{5<<20 - 1, 2, false},      // past the end
		{^uint64(0) - 1, 4, false}, // wrap-around
		{0, ^uint64(0), false},     // absurd length
		{4<<20 + 8, ^uint64(0) - 4, false},
	} {
		_, err := m.Slice(c.gpa, c.n)
		if (err == nil) != c.ok {
			t.Errorf("Slice(%#x, %#x) err=%v, want ok=%v", c.gpa, c.n, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrOutOfRange) {
			t.Errorf("error %v is not ErrOutOfRange", err)
		}
	}
}

func TestReadWriteAcrossAndValues(t *testing.T) {
	m := newTest(t, RegionSpec{0, 2 << 20})
	if err := m.PutUint64(0x1000, 0x1122334455667788); err != nil {
		t.Fatal(err)
	}
	v, _ := m.Uint32(0x1000)
	if v != 0x55667788 {
		t.Errorf("Uint32 = %#x", v)
	}
	buf := []byte("hello")
	if err := m.WriteAt(buf, 2<<20-2); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("write off the end: %v", err)
	}
	if err := m.WriteAt(buf, 0x2000); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if err := m.ReadAt(got, 0x2000); err != nil || string(got) != "hello" {
		t.Errorf("ReadAt = %q, %v", got, err)
	}
	if err := m.Zero(0x2000, 5); err != nil {
		t.Fatal(err)
	}
	m.ReadAt(got, 0x2000)
	if string(got) != "\x00\x00\x00\x00\x00" {
		t.Errorf("after Zero: %q", got)
	}
}

func TestAdjacentRegionsReadAcross(t *testing.T) {
	m := newTest(t, RegionSpec{0, 1 << 20}, RegionSpec{1 << 20, 1 << 20})
	if err := m.WriteAt([]byte("abcd"), 1<<20-2); err != nil {
		t.Fatalf("write across adjacent regions: %v", err)
	}
	if _, err := m.Slice(1<<20-2, 4); err == nil {
		t.Error("Slice across regions must fail: it promises one contiguous mapping")
	}
}

func TestLazyMapping(t *testing.T) {
	m := newTest(t, RegionSpec{0, 64 << 20})
	r, err := m.Resident()
	if err != nil {
		t.Fatal(err)
	}
	if r > 1<<20 {
		t.Errorf("%d bytes resident before the guest touched anything", r)
	}
	m.PutUint32(32<<20, 1)
	r2, _ := m.Resident()
	if r2 <= r {
		t.Errorf("touching a page did not make it resident (%d -> %d)", r, r2)
	}
}

func TestInvalidSpecs(t *testing.T) {
	for _, specs := range [][]RegionSpec{
		{{0, 1000}},
		{{0x800, 4096}},
		{{0, 2 << 20}, {1 << 20, 2 << 20}},
	} {
		if m, err := New(specs, Backing{}); err == nil {
			m.Close()
			t.Errorf("New(%v) succeeded", specs)
		}
	}
	if _, err := New([]RegionSpec{{0, 4096}}, Backing{HugePages: "giant"}); err == nil {
		t.Error("unknown huge page mode accepted")
	}
}

func TestMergeAndTHP(t *testing.T) {
	m, err := New([]RegionSpec{{0, 4 << 20}}, Backing{Merge: true, HugePages: "thp"})
	if err != nil {
		t.Skipf("KSM/THP not available here: %v", err)
	}
	defer m.Close()
	if a := m.Regions()[0].HostAddr(); a%(2<<20) != 0 {
		t.Errorf("THP-backed RAM at %#x, not on a 2 MiB boundary", a)
	}
}

// hugetlbfs RAM needs reserved huge pages: as root the test reserves
// them for itself and gives them back.
func TestHugetlbfs(t *testing.T) {
	const pool = "/proc/sys/vm/nr_hugepages"
	old, err := os.ReadFile(pool)
	if err != nil || os.Geteuid() != 0 {
		t.Skipf("reserving huge pages needs root and %s", pool)
	}
	have, err := strconv.Atoi(strings.TrimSpace(string(old)))
	if err != nil {
		t.Fatalf("%s: %q", pool, old)
	}
	if err := os.WriteFile(pool, []byte(strconv.Itoa(have+4)), 0); err != nil {
		t.Skipf("reserving huge pages: %v", err)
	}
	defer os.WriteFile(pool, old, 0)
	m, err := New([]RegionSpec{{0, 4 << 20}, {8 << 20, 2 << 20}}, Backing{HugePages: "hugetlbfs"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, r := range m.Regions() {
		if a := r.HostAddr(); a%(2<<20) != 0 {
			t.Errorf("hugetlbfs RAM at %#x, not on a 2 MiB boundary", a)
		}
	}
	m.PutUint32(8<<20+0x100, 0xfeedface)
	if v, err := m.Uint32(8<<20 + 0x100); err != nil || v != 0xfeedface {
		t.Errorf("read back %#x, %v", v, err)
	}
}

func TestSharedMemfd(t *testing.T) {
	m, err := New([]RegionSpec{{0, 1 << 20}}, Backing{Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Regions()[0].File == nil {
		t.Fatal("shared region has no memfd")
	}
	m.PutUint32(0x100, 0xdeadbeef)
	b := make([]byte, 4)
	if _, err := m.Regions()[0].File.ReadAt(b, 0x100); err != nil || b[0] != 0xef {
		t.Errorf("memfd does not see the write: %x %v", b, err)
	}
}

// Guest RAM sits between guard pages: its mapping is its own line in
// /proc/self/maps, with PROT_NONE neighbours.
func TestGuardPages(t *testing.T) {
	m := newTest(t, RegionSpec{0, 8 << 20})
	start := m.Regions()[0].HostAddr()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip(err)
	}
	var before, region, after string
	lines := strings.Split(string(maps), "\n")
	for i, l := range lines {
		var lo, hi uint64
		if _, err := fmt.Sscanf(l, "%x-%x", &lo, &hi); err != nil {
			continue
		}
		if lo == start {
			region = l
			if hi-lo != 8<<20 {
				t.Errorf("guest RAM mapping is %d bytes, want exactly %d: %s", hi-lo, 8<<20, l)
			}
			if i > 0 {
				before = lines[i-1]
			}
			if i+1 < len(lines) {
				after = lines[i+1]
			}
		}
	}
	if region == "" {
		t.Fatalf("no mapping starts at %#x", start)
	}
	for _, g := range []string{before, after} {
		if !strings.Contains(g, "---p") {
			t.Errorf("neighbour of guest RAM is not a guard page: %q", g)
		}
	}
}

// A dump is sparse and maps back, privately, to the same contents.
func TestDumpAndMapFile(t *testing.T) {
	m := newTest(t, RegionSpec{0, 4 << 20}, RegionSpec{8 << 20, 2 << 20})
	m.WriteAt([]byte("first"), 0x1234)
	m.WriteAt([]byte("second"), 8<<20+0x5000)
	f, err := os.CreateTemp(t.TempDir(), "mem")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	regions, err := m.Dump(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(regions) != 2 || regions[1].Offset != 4<<20 {
		t.Fatalf("regions %+v", regions)
	}
	var st unix.Stat_t
	unix.Fstat(int(f.Fd()), &st)
	if st.Size != 6<<20 || st.Blocks*512 > 64<<10 {
		t.Errorf("memory file: size %d, %d bytes allocated: not sparse", st.Size, st.Blocks*512)
	}
	m2, err := New([]RegionSpec{{0, 4 << 20}, {8 << 20, 2 << 20}}, Backing{File: f, FileOffsets: []int64{regions[0].Offset, regions[1].Offset}})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	b := make([]byte, 6)
	m2.ReadAt(b[:5], 0x1234)
	if string(b[:5]) != "first" {
		t.Errorf("restored %q", b[:5])
	}
	m2.ReadAt(b, 8<<20+0x5000)
	if string(b) != "second" {
		t.Errorf("restored %q", b)
	}
	// Writes are private: the file keeps the snapshot.
	m2.WriteAt([]byte("XXXXX"), 0x1234)
	f.ReadAt(b[:5], 0x1234)
	if string(b[:5]) != "first" {
		t.Errorf("a write to restored memory reached the file: %q", b[:5])
	}
}
