package vmm

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"golang.org/x/sys/unix"
)

// The memory file of a snapshot to explicit files: guest RAM regions back
// to back from offset 0 (as Memory.Dump writes them), then one footer
// page at the end of the last region:
//
//	magic [8]byte  "VIREOMEM"
//	id    [16]byte random, recorded in the state as SnapshotFileInfo.MemoryID
//
// The rest of the page is zero. A diff layer has a footer too, so merging
// a layer onto its base carries the layer's ID over.
const (
	memoryMagic  = "VIREOMEM"
	memoryIDSize = 16
	footerSize   = guestmem.PageSize
)

func newMemoryID() string {
	var b [memoryIDSize]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeFooter writes the footer page at off (the end of guest RAM).
func writeFooter(f *os.File, off int64, id string) error {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != memoryIDSize {
		return fmt.Errorf("%w: bad memory ID %q", ErrSnapshot, id)
	}
	page := make([]byte, footerSize)
	copy(page, memoryMagic)
	copy(page[len(memoryMagic):], raw)
	if _, err := f.WriteAt(page, off); err != nil {
		return fmt.Errorf("%w: writing the memory file's footer: %v", ErrSnapshot, err)
	}
	return nil
}

// readFooter returns the ID in the footer at off, or an error saying
// why there is none.
func readFooter(f *os.File, off int64) (string, error) {
	var b [len(memoryMagic) + memoryIDSize]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		if errors.Is(err, io.EOF) {
			return "", errors.New("it has no Vireo footer (too short)")
		}
		return "", err
	}
	if !bytes.Equal(b[:len(memoryMagic)], []byte(memoryMagic)) {
		return "", errors.New("it has no Vireo footer")
	}
	return hex.EncodeToString(b[len(memoryMagic):]), nil
}

// memoryEnd is where guest RAM ends in a memory file: the footer's offset.
func memoryEnd(regions []guestmem.DumpRegion) int64 {
	var end int64
	for _, r := range regions {
		end = max(end, r.Offset+int64(r.Size))
	}
	return end
}

// openMemoryFile opens the memory file of snap and checks that it holds
// every region and, for a state written to explicit files, that its
// footer carries the ID the state recorded.
func openMemoryFile(path string, snap *Snapshot) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: memory file: %v", ErrSnapshot, err)
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("%w: memory file: %v", ErrSnapshot, err))
	}
	if !st.Mode().IsRegular() {
		return fail(fmt.Errorf("%w: memory file %s is not a regular file", ErrSnapshot, path))
	}
	for _, r := range snap.Memory {
		if r.Offset < 0 || uint64(r.Offset)+r.Size > uint64(st.Size()) {
			return fail(fmt.Errorf("%w: memory file %s is truncated (%d bytes, region at %#x needs %d)", ErrSnapshot, path, st.Size(), r.GPA, uint64(r.Offset)+r.Size))
		}
	}
	if snap.Files == nil || snap.Files.MemoryID == "" {
		return f, nil
	}
	id, err := readFooter(f, memoryEnd(snap.Memory))
	switch {
	case err != nil:
		return fail(fmt.Errorf("%w: %w: %s: %v", ErrSnapshot, ErrMemoryMismatch, path, err))
	case id != snap.Files.MemoryID:
		return fail(fmt.Errorf("%w: %w: %s was written by another snapshot (or the snapshot was interrupted between its two files)", ErrSnapshot, ErrMemoryMismatch, path))
	}
	return f, nil
}

// memoryWrite is a memory file being written under a temporary name in
// the target's directory.
type memoryWrite struct {
	tmp      *os.File
	path     string
	backup   string // a link to the file replaced by commit, until done
	regions  []guestmem.DumpRegion
	diffBase string
	done     bool
}

func newMemoryWrite(path string) (*memoryWrite, error) {
	tmp, err := createTemp(path)
	if err != nil {
		return nil, fmt.Errorf("%w: memory file: %v", ErrSnapshot, err)
	}
	return &memoryWrite{tmp: tmp, path: path}, nil
}

// createTemp creates the temporary file a write of path starts with, in
// path's directory, and locks it (flock) for as long as it is open, so
// that sweepTemps can tell a killed writer's leftovers from live writes.
func createTemp(path string) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	return f, nil
}

// sweepTemps removes the temporary files of path that no live writer
// holds: what a VMM killed while writing a snapshot left behind.
func sweepTemps(path string) {
	pattern := "." + globEscaper.Replace(filepath.Base(path)) + ".tmp-*"
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), pattern))
	for _, p := range matches {
		if strings.HasSuffix(p, ".prev") {
			continue // a link to a replaced file, kept by a writer until its state is committed
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.Remove(p)
		}
		f.Close()
	}
}

var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)

// layout places the regions of mem back to back from offset 0.
func layout(mem *guestmem.Memory) []guestmem.DumpRegion {
	var out []guestmem.DumpRegion
	var off int64
	for _, r := range mem.Regions() {
		out = append(out, guestmem.DumpRegion{GPA: r.GPA, Size: r.Size, Offset: off})
		off += int64(r.Size)
	}
	return out
}

// writeFullMemory writes every non-zero page of guest RAM.
func (m *Machine) writeFullMemory(path, id string) (*memoryWrite, error) {
	w, err := newMemoryWrite(path)
	if err != nil {
		return nil, err
	}
	if w.regions, err = m.mem.Dump(w.tmp); err != nil {
		w.abort()
		return nil, fmt.Errorf("%w: writing memory: %v", ErrSnapshot, err)
	}
	if err := writeFooter(w.tmp, memoryEnd(w.regions), id); err != nil {
		w.abort()
		return nil, err
	}
	return w, nil
}

// writeDiffMemory writes the pending dirty pages: merged into a copy of
// the previous snapshot's memory file when path is that file, or alone
// into a new diff layer when path does not exist.
func (m *Machine) writeDiffMemory(path, id string) (*memoryWrite, error) {
	base := m.diff.base
	var src *os.File
	switch st, err := os.Stat(path); {
	case err == nil:
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: %s is not a regular file", ErrSnapshot, path)
		}
		if src, err = os.Open(path); err != nil {
			return nil, fmt.Errorf("%w: memory file: %v", ErrSnapshot, err)
		}
		defer src.Close()
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%w: memory file: %v", ErrSnapshot, err)
	}
	w, err := newMemoryWrite(path)
	if err != nil {
		return nil, err
	}
	w.regions = layout(m.mem)
	end := memoryEnd(w.regions)
	if src != nil {
		if got, err := readFooter(src, end); err != nil || got != base {
			w.abort()
			return nil, fmt.Errorf("%w: %s is not the memory file of this VM's previous snapshot; a Diff snapshot is merged into that file, or written alone to a new file", ErrSnapshot, path)
		}
		if err := copySparse(w.tmp, src, end); err != nil {
			w.abort()
			return nil, fmt.Errorf("%w: copying the base memory file: %v", ErrSnapshot, err)
		}
	} else {
		w.diffBase = base
		if err := w.tmp.Truncate(end); err != nil {
			w.abort()
			return nil, fmt.Errorf("%w: sizing the memory file: %v", ErrSnapshot, err)
		}
	}
	if err := m.writeDirtyPages(w.tmp, w.regions); err != nil {
		w.abort()
		return nil, err
	}
	if err := writeFooter(w.tmp, end, id); err != nil {
		w.abort()
		return nil, err
	}
	return w, nil
}

// writeDirtyPages writes every pending dirty page at its offset, zero
// pages included: a page the guest cleared must overwrite the base.
func (m *Machine) writeDirtyPages(f *os.File, regions []guestmem.DumpRegion) error {
	for i, r := range m.mem.Regions() {
		bits := m.diff.pending[i]
		pages := r.Size / guestmem.PageSize
		for p := uint64(0); p < pages; {
			if bits[p/64]&(1<<(p%64)) == 0 {
				p++
				continue
			}
			end := p + 1
			for end < pages && bits[end/64]&(1<<(end%64)) != 0 {
				end++
			}
			lo, hi := p*guestmem.PageSize, min(end*guestmem.PageSize, r.Size)
			if _, err := f.WriteAt(r.Host[lo:hi], regions[i].Offset+int64(lo)); err != nil {
				return fmt.Errorf("%w: writing memory: %v", ErrSnapshot, err)
			}
			p = end
		}
	}
	return nil
}

// copySparse copies [0, size) of src into dst, data segments only, so
// holes stay holes; copy_file_range lets the file system share blocks
// where it can.
func copySparse(dst, src *os.File, size int64) error {
	for off := int64(0); off < size; {
		data, err := unix.Seek(int(src.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole remains
		}
		if err != nil {
			return err
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(int(src.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		hole = min(hole, size)
		if err := copyRange(dst, src, data, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return dst.Truncate(size)
}

// copyRange copies n bytes at off from src to dst at the same offset.
func copyRange(dst, src *os.File, off, n int64) error {
	for n > 0 {
		roff, woff := off, off
		c, err := unix.CopyFileRange(int(src.Fd()), &roff, int(dst.Fd()), &woff, int(min(n, 1<<30)), 0)
		if err != nil || c == 0 {
			// Not supported between these files: copy through a buffer.
			_, err := io.Copy(io.NewOffsetWriter(dst, off), io.NewSectionReader(src, off, n))
			return err
		}
		off += int64(c)
		n -= int64(c)
	}
	return nil
}

// commit syncs the memory file and renames it over the target, keeping a
// link to the file it replaces until finish or rollback.
func (w *memoryWrite) commit() error {
	err := w.tmp.Sync()
	if cerr := w.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if _, serr := os.Lstat(w.path); serr == nil {
			backup := w.tmp.Name() + ".prev"
			if os.Link(w.path, backup) == nil {
				w.backup = backup
			}
		}
		err = os.Rename(w.tmp.Name(), w.path)
	}
	if err != nil {
		w.dropBackup()
		os.Remove(w.tmp.Name())
		w.done = true
		return fmt.Errorf("%w: writing memory file %s: %v", ErrSnapshot, w.path, err)
	}
	syncDir(filepath.Dir(w.path))
	return nil
}

// finish drops the link to the replaced file once the state is committed.
func (w *memoryWrite) finish() {
	w.dropBackup()
	w.done = true
}

// rollback puts the replaced memory file back when the state could not
// be committed, so the previous snapshot stays whole.
func (w *memoryWrite) rollback() {
	if w.done {
		return
	}
	w.done = true
	if w.backup != "" {
		os.Rename(w.backup, w.path)
		w.backup = ""
		return
	}
	os.Remove(w.path) // there was no previous file
}

func (w *memoryWrite) dropBackup() {
	if w.backup != "" {
		os.Remove(w.backup)
		w.backup = ""
	}
}

// abort drops a memory file that was never committed.
func (w *memoryWrite) abort() {
	if w.done {
		return
	}
	w.done = true
	w.tmp.Close()
	os.Remove(w.tmp.Name())
}
