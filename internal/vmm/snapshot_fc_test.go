package vmm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/vcpu"
	"golang.org/x/sys/unix"
)

const pg = guestmem.PageSize

// testMachine is a machine with guest RAM only (two regions) and dirty
// bookkeeping, enough for the memory-file paths.
func testMachine(t testing.TB) *Machine {
	t.Helper()
	mem, err := guestmem.New([]guestmem.RegionSpec{{GPA: 0, Size: 1 << 20}, {GPA: 4 << 20, Size: 512 << 10}}, guestmem.Backing{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	d := &diffState{}
	for _, r := range mem.Regions() {
		d.pending = append(d.pending, make([]uint64, guestmem.BitmapWords(r.Size)))
	}
	return &Machine{mem: mem, diff: d}
}

// write stores p at gpa and marks its pages dirty, as KVM would.
func (m *Machine) testWrite(t testing.TB, gpa uint64, p []byte) {
	t.Helper()
	if err := m.mem.WriteAt(p, gpa); err != nil {
		t.Fatal(err)
	}
	for i, r := range m.mem.Regions() {
		if gpa >= r.GPA && gpa < r.GPA+r.Size {
			for pgn := (gpa - r.GPA) / pg; pgn <= (gpa-r.GPA+uint64(len(p))-1)/pg; pgn++ {
				m.diff.pending[i][pgn/64] |= 1 << (pgn % 64)
			}
		}
	}
}

// image is guest RAM as the memory file lays it out.
func image(t *testing.T, m *Machine) []byte {
	t.Helper()
	var out []byte
	for _, r := range m.mem.Regions() {
		out = append(out, r.Host...)
	}
	return out
}

// testSnapshot is a state that passes check for m's memory.
func testSnapshot(m *Machine, regions []guestmem.DumpRegion, id string) *Snapshot {
	return &Snapshot{
		Vireo:    "test",
		Config:   SnapshotConfig{CPUs: 1, MemoryBytes: m.mem.Size()},
		Memory:   regions,
		VCPUs:    []*vcpu.State{{ID: 0}},
		Platform: &PlatformState{},
		Files:    &SnapshotFileInfo{MemoryID: id},
	}
}

// save writes m's memory (full, or diff) to path the way saveSnapshotFiles
// does, and the matching state to path+".state".
func save(t testing.TB, m *Machine, path string, diff bool) (string, *Snapshot) {
	t.Helper()
	id := newMemoryID()
	var w *memoryWrite
	var err error
	if diff {
		w, err = m.writeDiffMemory(path, id)
	} else {
		w, err = m.writeFullMemory(path, id)
	}
	if err != nil {
		t.Fatal(err)
	}
	snap := testSnapshot(m, w.regions, id)
	snap.Files.DiffBase = w.diffBase
	if err := w.commit(); err != nil {
		t.Fatal(err)
	}
	if err := writeStateFile(path+".state", snap); err != nil {
		t.Fatal(err)
	}
	w.finish()
	m.diff.committed(id)
	return id, snap
}

func fileData(t *testing.T, path string, n int) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != n+footerSize {
		t.Fatalf("%s: %d bytes, want %d + footer", path, len(b), n)
	}
	return b[:n]
}

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// A Full memory file is sparse, restores to the same bytes and carries
// the ID its state names; a Diff merged into it gives the current memory;
// a Diff to a new file is a sparse layer that, merged onto the base, does
// too.
func TestMemoryFilesFullAndDiff(t *testing.T) {
	dir := t.TempDir()
	m := testMachine(t)
	m.testWrite(t, 0x1000, []byte("first"))
	m.testWrite(t, 4<<20+0x3000, bytes.Repeat([]byte{7}, 3*pg))
	base := filepath.Join(dir, "mem")
	baseID, snap := save(t, m, base, false)
	n := int(m.mem.Size())
	if got := fileData(t, base, n); !bytes.Equal(got, image(t, m)) {
		t.Fatal("full memory file differs from guest RAM")
	}
	if a := allocated(t, base); a > 64<<10 {
		t.Errorf("full memory file has %d bytes allocated: not sparse", a)
	}
	f, err := openMemoryFile(base, snap)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	// Changes after the full snapshot, one of them clearing a page.
	m.testWrite(t, 0x1000, make([]byte, pg))
	m.testWrite(t, 0x8000, []byte("second"))
	m.testWrite(t, 4<<20+0x7f000, []byte("end"))
	layer := filepath.Join(dir, "layer")
	_, lsnap := save(t, m, layer, true)
	if lsnap.Files.DiffBase != baseID {
		t.Errorf("layer's base %q, want %q", lsnap.Files.DiffBase, baseID)
	}
	if a := allocated(t, layer); a > 4*pg+footerSize {
		t.Errorf("diff layer has %d bytes allocated, want the 3 dirty pages and the footer", a)
	}
	// Merge the layer onto a copy of the base, data blocks only.
	merged := filepath.Join(dir, "merged")
	copyFile(t, base, merged)
	mergeLayer(t, layer, merged)
	if got := fileData(t, merged, n); !bytes.Equal(got, image(t, m)) {
		t.Fatal("base + diff layer differs from guest RAM")
	}
	if _, err := openMemoryFile(merged, lsnap); err != nil {
		t.Fatalf("merged file does not match the layer's state: %v", err)
	}

	// The memory now equals the layer's snapshot, whose ID is the base
	// of the next diff; merged is that snapshot's complete memory file.
	m.testWrite(t, 0x2000, []byte("third"))
	_, msnap := save(t, m, merged, true)
	if msnap.Files.DiffBase != "" {
		t.Errorf("a diff merged into its base is complete, yet names base %q", msnap.Files.DiffBase)
	}
	if got := fileData(t, merged, n); !bytes.Equal(got, image(t, m)) {
		t.Fatal("diff merged into the base file differs from guest RAM")
	}
	if _, err := openMemoryFile(merged, msnap); err != nil {
		t.Fatal(err)
	}
	// The old state no longer matches the replaced memory file.
	if _, err := openMemoryFile(merged, lsnap); !errors.Is(err, ErrMemoryMismatch) {
		t.Fatalf("old state with new memory: %v, want ErrMemoryMismatch", err)
	}
	// A diff into a file that is not the previous snapshot's is refused.
	m.testWrite(t, 0x2000, []byte("fourth"))
	if _, err := m.writeDiffMemory(base, newMemoryID()); err == nil || !strings.Contains(err.Error(), "is not the memory file of this VM's previous snapshot") {
		t.Fatalf("diff into an unrelated file: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 6 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	st, _ := src.Stat()
	if err := copySparse(dst, src, st.Size()); err != nil {
		t.Fatal(err)
	}
}

// mergeLayer copies the data blocks of layer over base, as Firecracker's
// snapshot-editor rebase does.
func mergeLayer(t *testing.T, layer, base string) {
	t.Helper()
	src, err := os.Open(layer)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(base, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	st, _ := src.Stat()
	if err := copySparse(dst, src, st.Size()); err != nil {
		t.Fatal(err)
	}
}

func TestCopySparseKeepsHoles(t *testing.T) {
	dir := t.TempDir()
	src, _ := os.Create(filepath.Join(dir, "src"))
	defer src.Close()
	src.WriteAt([]byte("a"), 0)
	src.WriteAt([]byte("b"), 10<<20)
	src.Truncate(20 << 20)
	dst, _ := os.Create(filepath.Join(dir, "dst"))
	defer dst.Close()
	if err := copySparse(dst, src, 20<<20); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1)
	for _, c := range []struct {
		off  int64
		want byte
	}{{0, 'a'}, {10 << 20, 'b'}, {5 << 20, 0}} {
		dst.ReadAt(got, c.off)
		if got[0] != c.want {
			t.Errorf("byte at %#x = %q, want %q", c.off, got[0], c.want)
		}
	}
	if st, _ := dst.Stat(); st.Size() != 20<<20 {
		t.Errorf("size %d", st.Size())
	}
	if a := allocated(t, dst.Name()); a > 1<<20 {
		t.Errorf("copy has %d bytes allocated: holes were filled", a)
	}
}

// A state that cannot be committed puts the previous memory file back.
func TestMemoryRollback(t *testing.T) {
	dir := t.TempDir()
	m := testMachine(t)
	m.testWrite(t, 0, []byte("old"))
	path := filepath.Join(dir, "mem")
	_, snap := save(t, m, path, false)
	m.testWrite(t, 0, []byte("new"))
	w, err := m.writeFullMemory(path, newMemoryID())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := openMemoryFile(path, snap); !errors.Is(err, ErrMemoryMismatch) {
		t.Fatalf("new memory under the old state: %v", err)
	}
	w.rollback()
	f, err := openMemoryFile(path, snap)
	if err != nil {
		t.Fatalf("after rollback: %v", err)
	}
	defer f.Close()
	b := make([]byte, 3)
	f.ReadAt(b, 0)
	if string(b) != "old" {
		t.Fatalf("after rollback the memory file holds %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("files left behind: %v", entries)
	}
}

// Damaged snapshots fail with ErrSnapshot and one line, never a panic.
func TestLoadSnapshotFilesErrors(t *testing.T) {
	dir := t.TempDir()
	m := testMachine(t)
	m.testWrite(t, 0, []byte("x"))
	mem := filepath.Join(dir, "mem")
	save(t, m, mem, false)
	state := mem + ".state"
	snap, f, err := LoadSnapshotFiles(SnapshotFiles{State: state, Memory: mem})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if snap.Files == nil || snap.Config.MemoryBytes != m.mem.Size() {
		t.Fatalf("loaded %+v", snap)
	}
	raw, _ := os.ReadFile(state)
	memRaw, _ := os.ReadFile(mem)
	for _, c := range []struct {
		name       string
		state, mem []byte
		want       string
	}{
		{"truncated memory", raw, memRaw[:pg], "is truncated"},
		{"no footer", raw, memRaw[:len(memRaw)-footerSize], "no Vireo footer"},
		{"other snapshot's memory", raw, flip(memRaw, len(memRaw)-footerSize+len(memoryMagic)), "was written by another snapshot"},
		{"corrupt state", flip(raw, len(raw)/2), memRaw, "checksum"},
		{"truncated state", raw[:len(raw)-10], memRaw, "truncated"},
		{"version", flip(raw, 8), memRaw, "version"},
		{"not a snapshot", []byte("hello"), memRaw, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			s, mf := filepath.Join(d, "state"), filepath.Join(d, "mem")
			os.WriteFile(s, c.state, 0o600)
			os.WriteFile(mf, c.mem, 0o600)
			_, f, err := LoadSnapshotFiles(SnapshotFiles{State: s, Memory: mf})
			if err == nil {
				f.Close()
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q, want one line containing %q", err, c.want)
			}
		})
	}
	if _, _, err := LoadSnapshotFiles(SnapshotFiles{State: dir, Memory: mem}); err == nil {
		t.Fatal("a directory loaded as a state file")
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x55
	return c
}

func TestSnapshotPaths(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		files SnapshotFiles
		want  string
	}{
		{SnapshotFiles{State: "", Memory: "m"}, "both a state file and a memory file"},
		{SnapshotFiles{State: filepath.Join(dir, "x"), Memory: filepath.Join(dir, "x")}, "are the same file"},
		{SnapshotFiles{State: dir, Memory: filepath.Join(dir, "m")}, "is not a regular file"},
	} {
		if _, _, err := snapshotPaths(c.files); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.files, err, c.want)
		}
	}
	s, m, err := snapshotPaths(SnapshotFiles{State: "rel/state", Memory: "rel/mem"})
	if err != nil || !filepath.IsAbs(s) || !filepath.IsAbs(m) {
		t.Errorf("relative paths: %q %q %v", s, m, err)
	}
}

// The footer reader and the state decoder never panic on file bytes.
func FuzzLoadSnapshotFiles(f *testing.F) {
	m := testMachine(f)
	m.testWrite(f, 0x1000, []byte("seed"))
	mem := filepath.Join(f.TempDir(), "mem")
	save(f, m, mem, false)
	state, _ := os.ReadFile(mem + ".state")
	memRaw, _ := os.ReadFile(mem)
	f.Add(state, memRaw)
	f.Add([]byte("VIREOSNP"), []byte("VIREOMEM"))
	f.Add([]byte{}, make([]byte, 3*pg))
	f.Fuzz(func(t *testing.T, state, mem []byte) {
		d := t.TempDir()
		s, mf := filepath.Join(d, "state"), filepath.Join(d, "mem")
		os.WriteFile(s, state, 0o600)
		os.WriteFile(mf, mem, 0o600)
		if _, f, err := LoadSnapshotFiles(SnapshotFiles{State: s, Memory: mf}); err == nil {
			f.Close()
		}
		if fh, err := os.Open(mf); err == nil {
			readFooter(fh, int64(len(mem)/2))
			fh.Close()
		}
	})
}

// A killed writer's temporary files are swept; a live writer's and the
// links to replaced files are kept.
func TestSweepTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mem[1]")
	stale := filepath.Join(dir, ".mem[1].tmp-123")
	prev := filepath.Join(dir, ".mem[1].tmp-456.prev")
	other := filepath.Join(dir, ".other.tmp-789")
	for _, p := range []string{stale, prev, other} {
		os.WriteFile(p, []byte("x"), 0o600)
	}
	live, err := createTemp(path)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	sweepTemps(path)
	for p, want := range map[string]bool{stale: false, prev: true, other: true, live.Name(): true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}
