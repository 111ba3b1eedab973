package virtio

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// descriptor is a validated copy of one guest descriptor (struct virtq_desc).
type descriptor struct {
	addr  uint64
	len   uint32
	write bool
}

// DescriptorChain is one request: the validated copies of its descriptors,
// device-readable ones first, then device-writable ones. It is an
// io.Reader over the readable part and an io.Writer over the writable
// part (see chainio.go). Buffers are reached only through guestmem.
//
// A chain is filled by Queue.Pop or Queue.Next and reused for the next
// request; it is not safe for concurrent use.
type DescriptorChain struct {
	mem      *guestmem.Memory
	head     uint16
	descs    []descriptor // readable [0, nRead), writable [nRead, len)
	nRead    int
	readLen  uint64
	writeLen uint64

	// Read cursor: descriptor index, offset inside it, bytes consumed.
	rIdx  int
	rOff  uint64
	rDone uint64
	// Write cursor over the writable part, and the highest byte written.
	wIdx    int
	wOff    uint64
	wDone   uint64
	written uint64
}

// Head is the index of the chain's first descriptor: the id to hand back
// with Queue.AddUsed.
func (c *DescriptorChain) Head() uint16 { return c.head }

// Len is the number of data descriptors in the chain (indirect table
// pointers not counted).
func (c *DescriptorChain) Len() int { return len(c.descs) }

// ReadableLen is the total length of the device-readable buffers.
func (c *DescriptorChain) ReadableLen() uint64 { return c.readLen }

// WritableLen is the total length of the device-writable buffers.
func (c *DescriptorChain) WritableLen() uint64 { return c.writeLen }

// reset empties the chain for a new request.
func (c *DescriptorChain) reset(mem *guestmem.Memory, head uint16) {
	*c = DescriptorChain{mem: mem, head: head, descs: c.descs[:0]}
}

// walk follows the chain that starts at head, copying and validating each
// descriptor. Work is bounded: at most the queue size hops in the
// descriptor table, at most the table size hops in an indirect table, and
// at most the queue size data descriptors in total. Errors wrap ErrBadChain.
func (c *DescriptorChain) walk(q *Queue, head uint16) error {
	c.reset(q.mem, head)
	limit := int(q.cfg.Size)
	if cap(c.descs) < limit {
		// A chain from another queue's NewChain: grow once.
		c.descs = make([]descriptor, 0, q.maxSize)
	}
	table, tableLen := q.cfg.DescTable, uint64(q.cfg.Size)
	idx := uint64(head)
	indirect := false
	hops := uint64(0)
	for {
		if hops >= tableLen {
			return c.fail(ErrChainTooLong, "more than %d descriptors followed", tableLen)
		}
		hops++
		var raw [descSize]byte
		if err := q.mem.ReadAt(raw[:], table+idx*descSize); err != nil {
			return c.fail(ErrDescRange, "descriptor %d of table %#x: %v", idx, table, err)
		}
		addr := binary.LittleEndian.Uint64(raw[0:])
		length := binary.LittleEndian.Uint32(raw[8:])
		flags := binary.LittleEndian.Uint16(raw[12:])
		next := binary.LittleEndian.Uint16(raw[14:])

		if flags&DescFlagIndirect != 0 {
			switch {
			case !q.indirect:
				return c.fail(ErrIndirect, "descriptor %d: VIRTIO_F_INDIRECT_DESC was not negotiated", idx)
			case indirect:
				return c.fail(ErrIndirect, "descriptor %d: an indirect table inside an indirect table", idx)
			case flags&DescFlagNext != 0:
				return c.fail(ErrIndirect, "descriptor %d: INDIRECT together with NEXT", idx)
			case length == 0 || length%descSize != 0:
				return c.fail(ErrIndirect, "descriptor %d: table length %d is not a non-zero multiple of %d", idx, length, descSize)
			case !q.mem.Contains(addr, uint64(length)):
				return c.fail(ErrIndirect, "descriptor %d: table %#x+%#x outside guest RAM", idx, addr, length)
			}
			// The WRITE flag of the table pointer itself is ignored (2.7.5.3.2).
			table, tableLen, idx, indirect, hops = addr, uint64(length/descSize), 0, true, 0
			continue
		}

		write := flags&DescFlagWrite != 0
		if !write && len(c.descs) > c.nRead {
			return c.fail(ErrDescOrder, "descriptor %d", idx)
		}
		if length != 0 && !q.mem.Contains(addr, uint64(length)) {
			return c.fail(ErrDescRange, "descriptor %d: buffer %#x+%#x", idx, addr, length)
		}
		if len(c.descs) >= limit {
			return c.fail(ErrChainTooLong, "more than %d data descriptors", limit)
		}
		c.descs = append(c.descs, descriptor{addr: addr, len: length, write: write})
		if write {
			c.writeLen += uint64(length)
		} else {
			c.nRead++
			c.readLen += uint64(length)
		}

		if flags&DescFlagNext == 0 {
			return nil
		}
		if uint64(next) >= tableLen {
			return c.fail(ErrDescIndex, "descriptor %d: next %d, table of %d", idx, next, tableLen)
		}
		idx = uint64(next)
	}
}

// fail records a malformed chain: the descriptors are dropped so that the
// chain reads and writes nothing, and the error wraps ErrBadChain.
func (c *DescriptorChain) fail(cause error, format string, args ...any) error {
	c.descs = c.descs[:0]
	c.nRead, c.readLen, c.writeLen = 0, 0, 0
	return fmt.Errorf("%w: %w: head %d: %s", ErrBadChain, cause, c.head, fmt.Sprintf(format, args...))
}

// ReadableSlices appends to dst the guest memory holding n bytes of the
// device-readable part, starting off bytes into it: one slice per
// descriptor touched, zero-length descriptors skipped. WritableSlices does
// the same for the device-writable part. The slices alias guest RAM, so a
// device can move data between a file and the guest in place (preadv,
// pwritev); walk has checked that each buffer lies inside one RAM region.
// Neither moves the Read or Write cursor, and bytes written through the
// slices do not count in Written. When the part holds fewer than off+n
// bytes they return dst unchanged and io.ErrUnexpectedEOF. With enough
// capacity in dst they do not allocate.
func (c *DescriptorChain) ReadableSlices(dst [][]byte, off, n uint64) ([][]byte, error) {
	return c.slices(dst, c.descs[:c.nRead], c.readLen, off, n)
}

// WritableSlices is ReadableSlices for the device-writable part.
func (c *DescriptorChain) WritableSlices(dst [][]byte, off, n uint64) ([][]byte, error) {
	return c.slices(dst, c.descs[c.nRead:], c.writeLen, off, n)
}

func (c *DescriptorChain) slices(dst [][]byte, descs []descriptor, total, off, n uint64) ([][]byte, error) {
	if off > total || n > total-off {
		return dst, io.ErrUnexpectedEOF
	}
	start := len(dst)
	for _, d := range descs {
		if n == 0 {
			break
		}
		if off >= uint64(d.len) {
			off -= uint64(d.len)
			continue
		}
		k := min(n, uint64(d.len)-off)
		s, err := c.mem.Slice(d.addr+off, k)
		if err != nil {
			return dst[:start], err
		}
		dst = append(dst, s)
		n -= k
		off = 0
	}
	return dst, nil
}
