package blk

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	qlog "github.com/lima-vm/go-qcow2reader/log"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

// boundsDisk fails the test if the device hands its backend a range
// outside the disk.
type boundsDisk struct {
	backend
	limit int64
	t     *testing.T
}

func (b *boundsDisk) check(off, n int64) {
	if off < 0 || n < 0 || off > b.limit || n > b.limit-off {
		b.t.Fatalf("backend access %d+%d outside the %d-byte disk", off, n, b.limit)
	}
}

func total(bufs [][]byte) int64 {
	var n int64
	for _, b := range bufs {
		n += int64(len(b))
	}
	return n
}

func (b *boundsDisk) readv(s *iovScratch, bufs [][]byte, off int64) error {
	b.check(off, total(bufs))
	return b.backend.readv(s, bufs, off)
}

func (b *boundsDisk) writev(s *iovScratch, bufs [][]byte, off int64) error {
	b.check(off, total(bufs))
	return b.backend.writev(s, bufs, off)
}

func (b *boundsDisk) discard(off, n int64) error {
	b.check(off, n)
	return b.backend.discard(off, n)
}

func (b *boundsDisk) writeZeroes(off, n int64, unmap bool) error {
	b.check(off, n)
	return b.backend.writeZeroes(off, n, unmap)
}

// Layout of the fuzzed guest: 64 KiB of RAM whose first bytes come from
// the fuzzer; a queue of 16 entries at fixed places.
const (
	fuzzMem   = 64 << 10
	fuzzDesc  = 0x000
	fuzzAvail = 0x100
	fuzzUsed  = 0x200
	fuzzQueue = 16
	fuzzDisk  = 64 << 10 // 128 sectors
)

// fuzzSeed builds guest memory holding one request per call to add: its
// descriptors at consecutive table slots, published in order.
type fuzzSeed struct {
	b    []byte
	next int
	n    uint16
	heap uint64
}

func newFuzzSeed() *fuzzSeed { return &fuzzSeed{b: make([]byte, 0x2000), heap: 0x400} }

func (f *fuzzSeed) buf(data []byte, n int) uint64 {
	a := f.heap
	copy(f.b[a:], data)
	f.heap += uint64(max(n, len(data)))
	return a
}

// add writes a chain of (addr, len, write) buffers.
func (f *fuzzSeed) add(bufs ...[3]uint64) {
	head := f.next
	for i, b := range bufs {
		d := f.b[16*f.next:]
		binary.LittleEndian.PutUint64(d, b[0])
		binary.LittleEndian.PutUint32(d[8:], uint32(b[1]))
		var flags uint16
		if b[2] != 0 {
			flags |= virtio.DescFlagWrite
		}
		if i < len(bufs)-1 {
			flags |= virtio.DescFlagNext
			binary.LittleEndian.PutUint16(d[14:], uint16(f.next+1))
		}
		binary.LittleEndian.PutUint16(d[12:], flags)
		f.next++
	}
	binary.LittleEndian.PutUint16(f.b[fuzzAvail+4+2*int(f.n):], uint16(head))
	f.n++
	binary.LittleEndian.PutUint16(f.b[fuzzAvail+2:], f.n)
}

// FuzzBlkRequest feeds arbitrary guest memory (descriptor table, rings,
// request headers, segments) to a device over a 64 KiB raw disk: it
// never panics, never hands its backend a range outside the disk, and
// never changes the file's size.
func FuzzBlkRequest(f *testing.F) {
	s := newFuzzSeed()
	hdr := func(typ uint32, sector uint64) []byte { return header(typ, sector) }
	st := s.buf(nil, 16)
	s.add([3]uint64{s.buf(hdr(typeIn, 4), 16), 16, 0}, [3]uint64{s.buf(nil, 1024), 1024, 1}, [3]uint64{st, 1, 1})
	s.add([3]uint64{s.buf(hdr(typeOut, 126), 16), 16, 0}, [3]uint64{s.buf([]byte("data"), 1024), 1024, 0}, [3]uint64{st + 1, 1, 1})
	s.add([3]uint64{s.buf(append(hdr(typeDiscard, 0), seg(8, 8, 0)...), 32), 32, 0}, [3]uint64{st + 2, 1, 1})
	s.add([3]uint64{s.buf(append(hdr(typeWriteZeroes, 0), seg(120, 8, 1)...), 32), 32, 0}, [3]uint64{st + 3, 1, 1})
	s.add([3]uint64{s.buf(hdr(typeGetID, 0), 16), 16, 0}, [3]uint64{s.buf(nil, 21), 21, 1})
	s.add([3]uint64{s.buf(hdr(typeFlush, 0), 16), 16, 0}, [3]uint64{st + 4, 1, 1})
	f.Add(uint8(3), s.b)
	f.Add(uint8(0), s.b[:0x180])
	f.Add(uint8(1), []byte{})

	dir := f.TempDir()
	path := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(path, make([]byte, fuzzDisk), 0o644); err != nil {
		f.Fatal(err)
	}
	dev, err := Open(Config{Path: path, Serial: "fuzz"}, quietLog())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { dev.Close() })
	inner := dev.disk
	mem, err := guestmem.New([]guestmem.RegionSpec{{GPA: 0, Size: fuzzMem}}, guestmem.Backing{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mem.Close() })
	q, err := virtio.NewQueue(fuzzQueue)
	if err != nil {
		f.Fatal(err)
	}
	srv := newQueueServer(dev, 0, q, &recorder{})

	f.Fuzz(func(t *testing.T, feat uint8, data []byte) {
		dev.disk = &boundsDisk{backend: inner, limit: fuzzDisk, t: t}
		mem.Zero(0, fuzzMem)
		mem.WriteAt(data[:min(len(data), fuzzMem)], 0)
		features := uint64(virtio.FeatureVersion1)
		if feat&1 != 0 {
			features |= virtio.FeatureEventIdx
		}
		if feat&2 != 0 {
			features |= virtio.FeatureIndirectDesc
		}
		cfg := virtio.QueueConfig{Size: fuzzQueue, DescTable: fuzzDesc, AvailRing: fuzzAvail, UsedRing: fuzzUsed}
		if err := q.Configure(mem, cfg, features); err != nil {
			t.Fatal(err)
		}
		// Device writes may land on the available ring and publish more
		// requests: bound the loop here.
		for range 4 * fuzzQueue {
			more, err := srv.serveOne()
			if err != nil && !errors.Is(err, virtio.ErrBadQueue) {
				t.Fatalf("unclassified error: %v", err)
			}
			if err != nil || !more {
				break
			}
		}
		if st, err := os.Stat(path); err != nil || st.Size() != fuzzDisk {
			t.Fatalf("disk file size changed: %v, %v", st.Size(), err)
		}
	})
}

// FuzzQcow2Open opens arbitrary files as qcow2 images and reads from the
// ones that open: nothing panics and nothing reads past the virtual size.
func FuzzQcow2Open(f *testing.F) {
	content := pattern(3<<10, 3)
	clear(content[1024:2048])
	f.Add(buildQcow2(64<<10, content))
	f.Add(buildQcow2(1<<20, pattern(1024, 1))[:1100])
	f.Add([]byte(qcow2Magic + "\x00\x00\x00\x02"))

	// Route the reader's warnings once, then silence them.
	routeQcow2Warnings.Do(func() {})
	qlog.SetWarnFunc(func(string) {})
	path := filepath.Join(f.TempDir(), "img.qcow2")
	buf := make([]byte, 8192)
	s := newIOVScratch(4)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		disk, size, format, _, err := openImage(&Config{Path: path, ReadOnly: true, Format: FormatQcow2}, quietLog().Warn)
		if err != nil {
			return
		}
		defer disk.close()
		if format != FormatQcow2 || size <= 0 {
			t.Fatalf("opened as %s with size %d", format, size)
		}
		last := size / SectorSize * SectorSize
		for _, off := range []int64{0, last / 2 &^ (SectorSize - 1), last - int64(len(buf))} {
			if off < 0 {
				continue
			}
			n := min(int64(len(buf)), last-off)
			disk.readv(s, [][]byte{buf[:n/2], buf[n/2 : n]}, off)
		}
	})
}
