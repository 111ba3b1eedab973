package blk

import (
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// queueServer serves one request queue on its worker goroutine. Every
// buffer it needs is allocated when the device is activated, so serving
// a request does not allocate.
type queueServer struct {
	d      *Device
	index  int
	q      *virtio.Queue
	irq    virtio.Interrupt
	worker *virtio.Worker

	// mu is held while the worker serves the ring, so that State sees the
	// queue between requests.
	mu     sync.Mutex
	chain  *virtio.DescriptorChain
	bufs   [][]byte // guest slices of the current request's data
	io     *iovScratch
	hdr    [headerSize]byte
	seg    [segmentSize]byte
	segs   [maxDiscardSegments]segment
	status [1]byte
}

// segment is one validated range of a discard or write-zeroes request.
type segment struct {
	off, n int64 // bytes
	unmap  bool
}

func newQueueServer(d *Device, index int, q *virtio.Queue, irq virtio.Interrupt) *queueServer {
	n := int(q.MaxSize())
	return &queueServer{
		d: d, index: index, q: q, irq: irq,
		chain: q.NewChain(),
		bufs:  make([][]byte, 0, n),
		io:    newIOVScratch(n),
	}
}

// handle is the worker's event handler: it serves the ring until empty.
// An error (the ring itself is broken) stops the worker and marks the
// device as needing a reset.
func (s *queueServer) handle(int) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return 0, s.serve()
}

// serve completes every available request.
func (s *queueServer) serve() error {
	for {
		more, err := s.serveOne()
		if err != nil || !more {
			return err
		}
	}
}

// serveOne completes the next available request, if any, and signals the
// driver if it asks for it (EVENT_IDX keeps that to what the driver
// needs). It reports whether there was a request.
func (s *queueServer) serveOne() (bool, error) {
	ok, err := s.q.Next(s.chain)
	var used uint32
	switch {
	case errors.Is(err, virtio.ErrBadChain):
		// No trustworthy status byte: hand the chain back empty.
		s.d.badRequest("malformed descriptor chain", err)
	case err != nil || !ok:
		return false, err
	default:
		if used, err = s.process(); err != nil {
			return false, err
		}
	}
	if err := s.q.AddUsed(s.chain.Head(), used); err != nil {
		return false, err
	}
	return true, s.irq.Used(s.q)
}

// process executes the request in s.chain and writes its status byte, the
// last byte of the device-writable part. It returns the number of bytes
// written into the chain. A chain without a writable byte cannot carry a
// status: it is returned untouched.
func (s *queueServer) process() (uint32, error) {
	wl := s.chain.WritableLen()
	if wl == 0 {
		s.d.badRequest("request without a status byte", nil)
		return 0, nil
	}
	dataLen := wl - 1
	status, written := s.execute(dataLen)
	s.status[0] = status
	if _, err := s.chain.WriteAt(s.status[:], int64(dataLen)); err != nil {
		return 0, err
	}
	return uint32(min(written+1, math.MaxUint32)), nil
}

// execute runs and counts the request; dataLen is the size of the
// device-writable part before the status byte. It returns the status and
// the number of data bytes written into the chain.
func (s *queueServer) execute(dataLen uint64) (byte, uint64) {
	d, c := s.d, s.chain
	start := time.Now()
	if _, err := c.ReadAt(s.hdr[:], 0); err != nil {
		d.badRequest("request header shorter than 16 bytes", nil)
		return statusIOErr, 0
	}
	typ := le32(s.hdr[0:])
	sector := le64(s.hdr[8:])
	switch typ {
	case typeIn:
		off, ok := d.dataRange(sector, dataLen)
		if !ok {
			return statusIOErr, 0
		}
		bufs, err := c.WritableSlices(s.bufs[:0], 0, dataLen)
		if err != nil {
			d.badRequest("read buffers outside guest memory", err)
			return statusIOErr, 0
		}
		if err := d.disk.readv(s.io, bufs, off); err != nil {
			d.stats.read.failed.Inc()
			d.ioError("read", sector, err)
			return statusIOErr, 0
		}
		d.stats.read.done(dataLen, start)
		return statusOK, dataLen
	case typeOut:
		if d.cfg.ReadOnly {
			d.badRequest("write to a read-only disk", nil)
			return statusIOErr, 0
		}
		n := c.ReadableLen() - headerSize
		off, ok := d.dataRange(sector, n)
		if !ok {
			return statusIOErr, 0
		}
		bufs, err := c.ReadableSlices(s.bufs[:0], headerSize, n)
		if err != nil {
			d.badRequest("write buffers outside guest memory", err)
			return statusIOErr, 0
		}
		if err := d.disk.writev(s.io, bufs, off); err != nil {
			d.stats.write.failed.Inc()
			d.ioError("write", sector, err)
			return statusIOErr, 0
		}
		d.stats.write.done(n, start)
		d.stats.highest.Observe(uint64(off) + n)
		return statusOK, 0
	case typeFlush:
		if d.features&featFlush == 0 {
			return statusUnsupp, 0
		}
		if err := d.disk.flush(); err != nil {
			d.stats.flush.failed.Inc()
			d.ioError("flush", 0, err)
			return statusIOErr, 0
		}
		d.stats.flush.done(0, start)
		return statusOK, 0
	case typeGetID:
		n := min(dataLen, idBytes)
		if _, err := c.WriteAt(d.serial[:n], 0); err != nil {
			return statusIOErr, 0
		}
		return statusOK, n
	case typeDiscard, typeWriteZeroes:
		return s.discardOrZero(typ, start), 0
	}
	return statusUnsupp, 0
}

// discardOrZero runs a discard or write-zeroes request that started at
// start: all its segments are validated before any is applied.
func (s *queueServer) discardOrZero(typ uint32, start time.Time) byte {
	d, c := s.d, s.chain
	feature, op, ctr := uint64(featDiscard), "discard", &d.stats.discard
	if typ == typeWriteZeroes {
		feature, op, ctr = featWriteZeroes, "write-zeroes", &d.stats.writeZeroes
	}
	if d.features&feature == 0 {
		return statusUnsupp
	}
	payload := c.ReadableLen() - headerSize
	if payload == 0 || payload%segmentSize != 0 || payload/segmentSize > maxDiscardSegments {
		d.badRequest(op+" request with a bad segment list", nil)
		return statusIOErr
	}
	segs := s.segs[:payload/segmentSize]
	for i := range segs {
		if _, err := c.ReadAt(s.seg[:], int64(headerSize+i*segmentSize)); err != nil {
			return statusIOErr
		}
		sector, num, flags := le64(s.seg[0:]), le32(s.seg[8:]), le32(s.seg[12:])
		if flags&^flagUnmap != 0 || (typ == typeDiscard && flags&flagUnmap != 0) {
			return statusUnsupp
		}
		if num > maxSegmentSectors {
			d.badRequest(op+" segment above the advertised maximum", nil)
			return statusIOErr
		}
		off, ok := d.dataRange(sector, uint64(num)<<sectorShift)
		if !ok {
			return statusIOErr
		}
		segs[i] = segment{off: off, n: int64(num) << sectorShift, unmap: flags&flagUnmap != 0}
	}
	var total uint64
	for _, sg := range segs {
		var err error
		if typ == typeDiscard {
			err = d.disk.discard(sg.off, sg.n)
		} else {
			err = d.disk.writeZeroes(sg.off, sg.n, sg.unmap)
		}
		if err != nil {
			ctr.failed.Inc()
			d.ioError(op, uint64(sg.off)>>sectorShift, err)
			return statusIOErr
		}
		total += uint64(sg.n)
		if typ == typeWriteZeroes {
			d.stats.highest.Observe(uint64(sg.off + sg.n))
		}
	}
	ctr.done(total, start)
	return statusOK
}

// dataRange checks that n bytes at sector are whole sectors inside the
// disk and returns their byte offset.
func (d *Device) dataRange(sector, n uint64) (int64, bool) {
	if n%SectorSize != 0 {
		d.badRequest("data length is not a multiple of 512 bytes", nil)
		return 0, false
	}
	if sector > d.capacity || n>>sectorShift > d.capacity-sector {
		d.badRequest("request beyond the end of the disk", nil)
		return 0, false
	}
	return int64(sector << sectorShift), true
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
