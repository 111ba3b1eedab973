// Package guestmem owns guest RAM: host mappings outside the Go heap and
// bounds-checked access by guest physical address (GPA).
//
// Guest-supplied addresses must only be dereferenced through this package:
// every accessor checks that [gpa, gpa+len) lies inside one RAM region and
// returns ErrOutOfRange otherwise, so a hostile guest cannot make the VMM
// touch host memory outside the guest.
package guestmem

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ErrOutOfRange reports a guest physical range outside guest RAM.
var ErrOutOfRange = errors.New("guest address out of range")

// Backing selects how RAM is mapped on the host.
type Backing struct {
	// HugePages: "" or "off" (4 KiB pages), "thp" (transparent huge pages,
	// MADV_HUGEPAGE), or "hugetlbfs" (MAP_HUGETLB, needs reserved pages).
	HugePages string
	// Merge marks RAM MADV_MERGEABLE so KSM can share identical pages.
	Merge bool
	// Shared maps RAM from a memfd (MAP_SHARED) so it can be handed to
	// another process or file; otherwise it is private anonymous memory.
	Shared bool
	// File, when set, backs RAM with a private copy-on-write mapping of a
	// memory snapshot: region i starts at FileOffsets[i]. Pages load
	// lazily as the guest touches them; writes never reach the file.
	File        *os.File
	FileOffsets []int64
}

// RegionSpec is one contiguous range of guest RAM.
type RegionSpec struct {
	GPA  uint64
	Size uint64
}

// Region is a mapped range of guest RAM.
type Region struct {
	GPA  uint64
	Size uint64
	// Host is the host mapping. It is owned by Memory; do not retain
	// slices of it beyond Memory's lifetime.
	Host []byte
	// File is the memfd backing a shared region, or nil.
	File *os.File
	// reservation is Host plus its guard pages: what Close unmaps.
	reservation []byte
}

// Memory is guest RAM: a small ordered set of regions.
type Memory struct {
	regions []Region
	backing Backing
	dirty   atomic.Pointer[dirtyBitmaps] // device-write tracking (dirty.go)
}

// New maps the given regions. Pages are not touched: the guest's own
// accesses decide what becomes resident.
func New(specs []RegionSpec, b Backing) (*Memory, error) {
	m := &Memory{backing: b}
	var prevEnd uint64
	for i, s := range specs {
		if s.Size == 0 || s.Size%uint64(os.Getpagesize()) != 0 || s.GPA%uint64(os.Getpagesize()) != 0 {
			m.Close()
			return nil, fmt.Errorf("guestmem: region %d (%#x+%#x) is not page aligned", i, s.GPA, s.Size)
		}
		if i > 0 && s.GPA < prevEnd {
			m.Close()
			return nil, fmt.Errorf("guestmem: region %d overlaps or is out of order", i)
		}
		prevEnd = s.GPA + s.Size
		var off int64
		if b.File != nil {
			if i >= len(b.FileOffsets) {
				m.Close()
				return nil, fmt.Errorf("guestmem: no file offset for region %d", i)
			}
			off = b.FileOffsets[i]
		}
		r, err := mapRegion(s, b, off)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.regions = append(m.regions, r)
	}
	return m, nil
}

func mapRegion(s RegionSpec, b Backing, fileOff int64) (Region, error) {
	r := Region{GPA: s.GPA, Size: s.Size}
	prot := unix.PROT_READ | unix.PROT_WRITE
	flags := unix.MAP_NORESERVE
	fd := -1
	switch b.HugePages {
	case "", "off", "thp":
	case "hugetlbfs":
		if s.Size%(2<<20) != 0 {
			return r, fmt.Errorf("guestmem: hugetlbfs needs a multiple of 2 MiB, region is %#x bytes", s.Size)
		}
	default:
		return r, fmt.Errorf("guestmem: unknown huge page mode %q (want off, thp or hugetlbfs)", b.HugePages)
	}
	if b.File != nil {
		if b.Shared || b.HugePages == "hugetlbfs" {
			return r, fmt.Errorf("guestmem: a memory file cannot back shared or hugetlbfs memory")
		}
		fd = int(b.File.Fd())
		flags |= unix.MAP_PRIVATE
	} else if b.Shared {
		mfdFlags := unix.MFD_CLOEXEC
		if b.HugePages == "hugetlbfs" {
			mfdFlags |= unix.MFD_HUGETLB
		}
		nfd, err := unix.MemfdCreate("vireo-ram", mfdFlags)
		if err != nil {
			return r, fmt.Errorf("guestmem: memfd_create: %w", err)
		}
		if err := unix.Ftruncate(nfd, int64(s.Size)); err != nil {
			unix.Close(nfd)
			return r, fmt.Errorf("guestmem: sizing memfd to %d bytes: %w", s.Size, err)
		}
		fd = nfd
		r.File = os.NewFile(uintptr(nfd), "vireo-ram")
		flags |= unix.MAP_SHARED
	} else {
		flags |= unix.MAP_PRIVATE | unix.MAP_ANONYMOUS
		if b.HugePages == "hugetlbfs" {
			flags |= unix.MAP_HUGETLB
		}
	}
	align := 0
	if b.HugePages == "hugetlbfs" || b.HugePages == "thp" {
		align = 2 << 20
	}
	mem, reservation, err := mmapGuarded(fd, fileOff, int(s.Size), align, prot, flags)
	if err != nil {
		if r.File != nil {
			r.File.Close()
		}
		if b.HugePages == "hugetlbfs" {
			return r, fmt.Errorf("guestmem: mapping %d MiB of hugetlbfs pages (are enough reserved in /proc/sys/vm/nr_hugepages?): %w", s.Size>>20, err)
		}
		return r, fmt.Errorf("guestmem: mapping %d MiB of guest RAM: %w", s.Size>>20, err)
	}
	r.Host, r.reservation = mem, reservation
	if b.HugePages == "thp" {
		if err := unix.Madvise(mem, unix.MADV_HUGEPAGE); err != nil {
			unix.Munmap(reservation)
			return r, fmt.Errorf("guestmem: MADV_HUGEPAGE (transparent huge pages unavailable?): %w", err)
		}
	}
	if b.Merge {
		if err := unix.Madvise(mem, unix.MADV_MERGEABLE); err != nil {
			unix.Munmap(reservation)
			return r, fmt.Errorf("guestmem: MADV_MERGEABLE (KSM unavailable?): %w", err)
		}
	}
	return r, nil
}

// Close unmaps all regions.
func (m *Memory) Close() error {
	var first error
	for i := range m.regions {
		r := &m.regions[i]
		if r.reservation != nil {
			if err := unix.Munmap(r.reservation); err != nil && first == nil {
				first = err
			}
			r.Host, r.reservation = nil, nil
		}
		if r.File != nil {
			r.File.Close()
			r.File = nil
		}
	}
	m.regions = nil
	return first
}

// Regions returns the mapped regions in GPA order. The slice must not be modified.
func (m *Memory) Regions() []Region { return m.regions }

// Backing returns the backing options the memory was created with.
func (m *Memory) Backing() Backing { return m.backing }

// Size is the total RAM size in bytes.
func (m *Memory) Size() uint64 {
	var n uint64
	for _, r := range m.regions {
		n += r.Size
	}
	return n
}

// Slice returns the host bytes backing [gpa, gpa+n). The range must lie
// within a single region. The result aliases guest memory.
func (m *Memory) Slice(gpa, n uint64) ([]byte, error) {
	for i := range m.regions {
		r := &m.regions[i]
		if gpa >= r.GPA && gpa-r.GPA < r.Size {
			off := gpa - r.GPA
			if n > r.Size-off {
				return nil, ErrOutOfRange
			}
			return r.Host[off : off+n : off+n], nil
		}
	}
	return nil, ErrOutOfRange
}

// Contains reports whether [gpa, gpa+n) lies within one region.
func (m *Memory) Contains(gpa, n uint64) bool {
	_, err := m.Slice(gpa, n)
	return err == nil
}

// ReadAt copies guest memory at gpa into p. It implements io.ReaderAt
// semantics across region boundaries only where the regions are adjacent.
func (m *Memory) ReadAt(p []byte, gpa uint64) error {
	for len(p) > 0 {
		s, err := m.chunk(gpa, uint64(len(p)))
		if err != nil {
			return err
		}
		n := copy(p, s)
		p = p[n:]
		gpa += uint64(n)
	}
	return nil
}

// WriteAt copies p into guest memory at gpa.
func (m *Memory) WriteAt(p []byte, gpa uint64) error {
	for len(p) > 0 {
		s, err := m.chunk(gpa, uint64(len(p)))
		if err != nil {
			return err
		}
		n := copy(s, p)
		m.MarkDirty(gpa, uint64(n))
		p = p[n:]
		gpa += uint64(n)
	}
	return nil
}

// chunk returns the largest slice starting at gpa, up to n bytes, within one region.
func (m *Memory) chunk(gpa, n uint64) ([]byte, error) {
	for i := range m.regions {
		r := &m.regions[i]
		if gpa >= r.GPA && gpa-r.GPA < r.Size {
			off := gpa - r.GPA
			if n > r.Size-off {
				n = r.Size - off
			}
			return r.Host[off : off+n], nil
		}
	}
	return nil, ErrOutOfRange
}

// Zero fills [gpa, gpa+n) with zeros.
func (m *Memory) Zero(gpa, n uint64) error {
	for n > 0 {
		s, err := m.chunk(gpa, n)
		if err != nil {
			return err
		}
		clear(s)
		m.MarkDirty(gpa, uint64(len(s)))
		n -= uint64(len(s))
		gpa += uint64(len(s))
	}
	return nil
}

// Uint16, Uint32 and Uint64 read little-endian values; Put* write them.

func (m *Memory) Uint16(gpa uint64) (uint16, error) {
	s, err := m.Slice(gpa, 2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(s), nil
}

func (m *Memory) Uint32(gpa uint64) (uint32, error) {
	s, err := m.Slice(gpa, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s), nil
}

func (m *Memory) Uint64(gpa uint64) (uint64, error) {
	s, err := m.Slice(gpa, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(s), nil
}

func (m *Memory) PutUint16(gpa uint64, v uint16) error {
	s, err := m.Slice(gpa, 2)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint16(s, v)
	m.MarkDirty(gpa, 2)
	return nil
}

func (m *Memory) PutUint32(gpa uint64, v uint32) error {
	s, err := m.Slice(gpa, 4)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(s, v)
	m.MarkDirty(gpa, 4)
	return nil
}

func (m *Memory) PutUint64(gpa uint64, v uint64) error {
	s, err := m.Slice(gpa, 8)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(s, v)
	m.MarkDirty(gpa, 8)
	return nil
}

// Resident returns the number of bytes of guest RAM resident in host memory
// (mincore over every region).
func (m *Memory) Resident() (uint64, error) {
	page := uint64(os.Getpagesize())
	var total uint64
	for _, r := range m.regions {
		vec := make([]byte, (r.Size+page-1)/page)
		if err := mincore(r.Host, vec); err != nil {
			return 0, fmt.Errorf("guestmem: mincore: %w", err)
		}
		for _, v := range vec {
			if v&1 != 0 {
				total += page
			}
		}
	}
	return total, nil
}
