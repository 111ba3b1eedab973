package virtio

import (
	"errors"
	"io"
	"math"
)

// ErrOffset reports a negative offset passed to ReadAt or WriteAt.
var ErrOffset = errors.New("virtio: negative offset into a descriptor chain")

// Read copies from the device-readable buffers, continuing where the
// previous Read or Skip stopped. It returns io.EOF at the end of them.
func (c *DescriptorChain) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 && c.rIdx < c.nRead {
		d := c.descs[c.rIdx]
		if c.rOff == uint64(d.len) {
			c.rIdx, c.rOff = c.rIdx+1, 0
			continue
		}
		n := min(uint64(len(p)), uint64(d.len)-c.rOff)
		if err := c.mem.ReadAt(p[:n], d.addr+c.rOff); err != nil {
			return total, err
		}
		p = p[n:]
		total += int(n)
		c.rOff += n
		c.rDone += n
	}
	if total == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return total, nil
}

// Skip consumes up to n readable bytes without copying them and returns
// how many were skipped.
func (c *DescriptorChain) Skip(n uint64) uint64 {
	done := uint64(0)
	for n > 0 && c.rIdx < c.nRead {
		left := uint64(c.descs[c.rIdx].len) - c.rOff
		if left == 0 {
			c.rIdx, c.rOff = c.rIdx+1, 0
			continue
		}
		k := min(n, left)
		c.rOff += k
		c.rDone += k
		done += k
		n -= k
	}
	return done
}

// Remaining is the number of readable bytes not yet consumed.
func (c *DescriptorChain) Remaining() uint64 { return c.readLen - c.rDone }

// ReadAt copies readable bytes starting off bytes into the readable part,
// without moving the Read cursor (for headers parsed before the body). It
// implements io.ReaderAt.
func (c *DescriptorChain) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, ErrOffset
	}
	total := 0
	pos := uint64(off)
	for i := 0; i < c.nRead && len(p) > 0; i++ {
		d := c.descs[i]
		if pos >= uint64(d.len) {
			pos -= uint64(d.len)
			continue
		}
		n := min(uint64(len(p)), uint64(d.len)-pos)
		if err := c.mem.ReadAt(p[:n], d.addr+pos); err != nil {
			return total, err
		}
		p = p[n:]
		total += int(n)
		pos = 0
	}
	if len(p) > 0 {
		return total, io.EOF
	}
	return total, nil
}

// Write copies p into the device-writable buffers, continuing where the
// previous Write stopped. When p does not fit it writes what does and
// returns io.ErrShortWrite.
func (c *DescriptorChain) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 && c.wIdx < len(c.descs)-c.nRead {
		d := c.descs[c.nRead+c.wIdx]
		if c.wOff == uint64(d.len) {
			c.wIdx, c.wOff = c.wIdx+1, 0
			continue
		}
		n := min(uint64(len(p)), uint64(d.len)-c.wOff)
		if err := c.mem.WriteAt(p[:n], d.addr+c.wOff); err != nil {
			return total, err
		}
		p = p[n:]
		total += int(n)
		c.wOff += n
		c.wDone += n
		c.written = max(c.written, c.wDone)
	}
	if len(p) > 0 {
		return total, io.ErrShortWrite
	}
	return total, nil
}

// WritableRemaining is the number of writable bytes after the Write cursor.
func (c *DescriptorChain) WritableRemaining() uint64 { return c.writeLen - c.wDone }

// WriteAt copies p into the writable part at offset off, without moving
// the Write cursor (for status bytes or headers filled in last). It
// implements io.WriterAt; a write past the end returns io.ErrShortWrite.
func (c *DescriptorChain) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, ErrOffset
	}
	total := 0
	pos := uint64(off)
	for i := c.nRead; i < len(c.descs) && len(p) > 0; i++ {
		d := c.descs[i]
		if pos >= uint64(d.len) {
			pos -= uint64(d.len)
			continue
		}
		n := min(uint64(len(p)), uint64(d.len)-pos)
		if err := c.mem.WriteAt(p[:n], d.addr+pos); err != nil {
			return total, err
		}
		p = p[n:]
		total += int(n)
		pos = 0
	}
	if total > 0 {
		c.written = max(c.written, uint64(off)+uint64(total))
	}
	if len(p) > 0 {
		return total, io.ErrShortWrite
	}
	return total, nil
}

// Written is the length of the writable prefix the device has filled: the
// highest offset written by Write or WriteAt, capped at 2^32-1. It is the
// length to report with Queue.AddUsed.
func (c *DescriptorChain) Written() uint32 {
	return uint32(min(c.written, math.MaxUint32))
}
