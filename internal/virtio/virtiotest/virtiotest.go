// Package virtiotest is a fake guest driver for device tests: it lays out
// split virtqueues in a guestmem.Memory, builds descriptor chains (direct
// and indirect), publishes them and reads back used elements, the way a
// guest's virtio driver would.
package virtiotest

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

// NewMemory maps size bytes of guest RAM at GPA 0 and unmaps it when the
// test ends.
func NewMemory(t testing.TB, size uint64) *guestmem.Memory {
	t.Helper()
	mem, err := guestmem.New([]guestmem.RegionSpec{{GPA: 0, Size: size}}, guestmem.Backing{})
	if err != nil {
		t.Fatalf("guest memory: %v", err)
	}
	t.Cleanup(func() { mem.Close() })
	return mem
}

// Buf is one buffer of a chain.
type Buf struct {
	Addr  uint64
	Len   uint32
	Write bool // device-writable
}

// Driver is the guest side of one split virtqueue.
type Driver struct {
	Mem               *guestmem.Memory
	Size              uint16
	Desc, Avail, Used uint64
	availIdx          uint16
	lastUsed          uint16
	nextDesc          uint16
	heap, heapEnd     uint64
	t                 testing.TB
}

// NewDriver lays out a queue of the given size at base (16-byte aligned),
// with the descriptor table, the available ring and the used ring back to
// back, and a bump allocator for buffers from the next page up to limit.
func NewDriver(t testing.TB, mem *guestmem.Memory, size uint16, base, limit uint64) *Driver {
	t.Helper()
	n := uint64(size)
	d := &Driver{Mem: mem, Size: size, t: t}
	d.Desc = base
	d.Avail = base + 16*n
	d.Used = (d.Avail + 4 + 2*n + 2 + 3) &^ 3
	end := d.Used + 4 + 8*n + 2
	d.heap = (end + 0xfff) &^ 0xfff
	d.heapEnd = limit
	return d
}

// Config is the queue configuration the driver would program.
func (d *Driver) Config() virtio.QueueConfig {
	return virtio.QueueConfig{Size: d.Size, DescTable: d.Desc, AvailRing: d.Avail, UsedRing: d.Used}
}

// Alloc returns n bytes of guest memory for buffers (16-byte aligned).
func (d *Driver) Alloc(n uint64) uint64 {
	d.t.Helper()
	a := (d.heap + 15) &^ 15
	if a+n > d.heapEnd {
		d.t.Fatalf("virtiotest: out of buffer memory (%d bytes wanted)", n)
	}
	d.heap = a + n
	return a
}

// SetDesc writes descriptor i of the table at table.
func (d *Driver) SetDesc(table uint64, i uint16, addr uint64, length uint32, flags, next uint16) {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:], addr)
	binary.LittleEndian.PutUint32(b[8:], length)
	binary.LittleEndian.PutUint16(b[12:], flags)
	binary.LittleEndian.PutUint16(b[14:], next)
	d.must(d.Mem.WriteAt(b[:], table+16*uint64(i)))
}

// WriteChain writes bufs as a chain into consecutive descriptors of the
// queue's table (wrapping) and returns the head index, without publishing.
func (d *Driver) WriteChain(bufs ...Buf) uint16 {
	head := d.nextDesc
	for i, b := range bufs {
		idx := (head + uint16(i)) % d.Size
		var flags, next uint16
		if b.Write {
			flags |= virtio.DescFlagWrite
		}
		if i < len(bufs)-1 {
			flags |= virtio.DescFlagNext
			next = (idx + 1) % d.Size
		}
		d.SetDesc(d.Desc, idx, b.Addr, b.Len, flags, next)
	}
	d.nextDesc = (head + uint16(len(bufs))) % d.Size
	return head
}

// WriteIndirect writes bufs as an indirect table at table (descriptors
// 0..n-1 chained in order) and one queue descriptor pointing at it; it
// returns that descriptor's index, without publishing.
func (d *Driver) WriteIndirect(table uint64, bufs ...Buf) uint16 {
	for i, b := range bufs {
		var flags, next uint16
		if b.Write {
			flags |= virtio.DescFlagWrite
		}
		if i < len(bufs)-1 {
			flags |= virtio.DescFlagNext
			next = uint16(i + 1)
		}
		d.SetDesc(table, uint16(i), b.Addr, b.Len, flags, next)
	}
	head := d.nextDesc
	d.SetDesc(d.Desc, head, table, uint32(16*len(bufs)), virtio.DescFlagIndirect, 0)
	d.nextDesc = (head + 1) % d.Size
	return head
}

// Publish puts head in the next available-ring slot and advances the
// available index.
func (d *Driver) Publish(head uint16) {
	slot := uint64(d.availIdx % d.Size)
	d.must(d.Mem.PutUint16(d.Avail+4+2*slot, head))
	d.availIdx++
	d.must(d.Mem.PutUint16(d.Avail+2, d.availIdx))
}

// AddChain writes and publishes a chain and returns its head.
func (d *Driver) AddChain(bufs ...Buf) uint16 {
	h := d.WriteChain(bufs...)
	d.Publish(h)
	return h
}

// SetAvailIdx overwrites the available index (for hostile tests).
func (d *Driver) SetAvailIdx(v uint16) {
	d.availIdx = v
	d.must(d.Mem.PutUint16(d.Avail+2, v))
}

// SetAvailFlags writes the available ring's flags.
func (d *Driver) SetAvailFlags(v uint16) { d.must(d.Mem.PutUint16(d.Avail, v)) }

// SetUsedEvent writes used_event (EVENT_IDX).
func (d *Driver) SetUsedEvent(v uint16) {
	d.must(d.Mem.PutUint16(d.Avail+4+2*uint64(d.Size), v))
}

// AvailEvent reads avail_event (EVENT_IDX).
func (d *Driver) AvailEvent() uint16 { return d.u16(d.Used + 4 + 8*uint64(d.Size)) }

// UsedFlags reads the used ring's flags.
func (d *Driver) UsedFlags() uint16 { return d.u16(d.Used) }

// UsedIdx reads the used index.
func (d *Driver) UsedIdx() uint16 { return d.u16(d.Used + 2) }

// NextUsed returns the next used element not yet seen, if any.
func (d *Driver) NextUsed() (id, length uint32, ok bool) {
	if d.UsedIdx() == d.lastUsed {
		return 0, 0, false
	}
	e := d.Used + 4 + 8*uint64(d.lastUsed%d.Size)
	id, err := d.Mem.Uint32(e)
	d.must(err)
	length, err = d.Mem.Uint32(e + 4)
	d.must(err)
	d.lastUsed++
	return id, length, true
}

func (d *Driver) u16(gpa uint64) uint16 {
	v, err := d.Mem.Uint16(gpa)
	d.must(err)
	return v
}

func (d *Driver) must(err error) {
	if err != nil {
		d.t.Helper()
		d.t.Fatalf("virtiotest: %v", err)
	}
}

// Bytes reads n bytes of guest memory at gpa.
func Bytes(t testing.TB, mem *guestmem.Memory, gpa uint64, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if err := mem.ReadAt(b, gpa); err != nil {
		t.Fatalf("virtiotest: reading %#x+%d: %v", gpa, n, err)
	}
	return b
}

// String describes the driver's ring layout.
func (d *Driver) String() string {
	return fmt.Sprintf("queue size %d: desc %#x avail %#x used %#x", d.Size, d.Desc, d.Avail, d.Used)
}
