package migration

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// ErrWrite reports a record the writer refuses to produce (a caller bug,
// not a stream error).
var ErrWrite = errors.New("migration: invalid record")

// Writer encodes a stream. It buffers: call Flush before waiting for the
// other side. It is not safe for concurrent use.
type Writer struct {
	w   *bufio.Writer
	hdr [recordHeaderSize + pagesHeaderSize]byte
	sum [crcSize]byte
	// stage holds a copy of the pages being sent: guest memory changes
	// under a running VM, and the checksum must match the bytes sent.
	stage []byte
}

// writeBuffer is the Writer's buffer size: large writes keep system calls
// and TCP segments few.
const writeBuffer = 256 << 10

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, writeBuffer)}
}

// Header writes the stream header.
func (w *Writer) Header() error {
	var h [streamHeaderSize]byte
	copy(h[:8], Magic)
	binary.LittleEndian.PutUint32(h[8:], Version)
	_, err := w.w.Write(h[:])
	return err
}

// record writes one record whose payload is head followed by body.
func (w *Writer) record(k Kind, head, body []byte) error {
	n := int64(len(head)) + int64(len(body))
	if n > maxPayload(k) {
		return fmt.Errorf("%w: %s payload of %d bytes", ErrWrite, k, n)
	}
	var rh [recordHeaderSize]byte
	rh[0] = byte(k)
	binary.LittleEndian.PutUint32(rh[4:], uint32(n))
	crc := crc32.Update(0, castagnoli, rh[:])
	crc = crc32.Update(crc, castagnoli, head)
	crc = crc32.Update(crc, castagnoli, body)
	binary.LittleEndian.PutUint32(w.sum[:], crc)
	for _, b := range [][]byte{rh[:], head, body, w.sum[:]} {
		if _, err := w.w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// Setup writes the RAM layout and the machine description.
func (w *Writer) Setup(regions []guestmem.RegionSpec, doc []byte) error {
	if len(regions) == 0 || len(regions) > MaxRegions || len(doc) > MaxSetupDoc {
		return fmt.Errorf("%w: setup with %d regions and a %d-byte description", ErrWrite, len(regions), len(doc))
	}
	head := make([]byte, 4+16*len(regions))
	binary.LittleEndian.PutUint32(head, uint32(len(regions)))
	for i, r := range regions {
		binary.LittleEndian.PutUint64(head[4+16*i:], r.GPA)
		binary.LittleEndian.PutUint64(head[12+16*i:], r.Size)
	}
	return w.record(KindSetup, head, doc)
}

// Pages writes the pages in data (a whole number of pages, at most
// MaxRunPages) starting at page first of region. data may change
// meanwhile (guest memory of a running VM): it is copied once, and the
// copy is checksummed and sent.
func (w *Writer) Pages(region uint32, first uint64, data []byte) error {
	if len(data) == 0 || len(data)%PageSize != 0 || len(data) > MaxRunPages*PageSize {
		return fmt.Errorf("%w: a run of %d bytes", ErrWrite, len(data))
	}
	if w.stage == nil {
		w.stage = make([]byte, MaxRunPages*PageSize)
	}
	n := copy(w.stage, data)
	return w.record(KindPages, w.pagesHeader(region, first, uint32(n/PageSize), 0), w.stage[:n])
}

// ZeroPages writes a run of count zero pages (1 to MaxRunPages).
func (w *Writer) ZeroPages(region uint32, first uint64, count uint32) error {
	if count == 0 || count > MaxRunPages {
		return fmt.Errorf("%w: a zero run of %d pages", ErrWrite, count)
	}
	return w.record(KindPages, w.pagesHeader(region, first, count, FlagZero), nil)
}

func (w *Writer) pagesHeader(region uint32, first uint64, count, flags uint32) []byte {
	h := w.hdr[:pagesHeaderSize]
	binary.LittleEndian.PutUint32(h[0:], region)
	binary.LittleEndian.PutUint32(h[4:], flags)
	binary.LittleEndian.PutUint64(h[8:], first)
	binary.LittleEndian.PutUint32(h[16:], count)
	return h
}

// EndPass closes pass number pass, which carried pages pages.
func (w *Writer) EndPass(pass uint32, pages uint64) error {
	var p [passEndSize]byte
	binary.LittleEndian.PutUint32(p[0:], pass)
	binary.LittleEndian.PutUint64(p[4:], pages)
	return w.record(KindPassEnd, p[:], nil)
}

// State writes the device state document.
func (w *Writer) State(doc []byte) error {
	if len(doc) == 0 {
		return fmt.Errorf("%w: empty state", ErrWrite)
	}
	return w.record(KindState, doc, nil)
}

// Verify writes the checksums (PageChecksum) of the pages of region
// from page first on.
func (w *Writer) Verify(region uint32, first uint64, sums []uint32) error {
	if len(sums) == 0 || len(sums) > MaxVerifyPages {
		return fmt.Errorf("%w: %d page checksums", ErrWrite, len(sums))
	}
	body := make([]byte, 4*len(sums))
	for i, s := range sums {
		binary.LittleEndian.PutUint32(body[4*i:], s)
	}
	return w.record(KindVerify, w.pagesHeader(region, first, uint32(len(sums)), 0), body)
}

// PageChecksum is the checksum Verify records carry for one page.
func PageChecksum(page []byte) uint32 { return crc32.Checksum(page, castagnoli) }

// End writes the completion marker and flushes the stream.
func (w *Writer) End(passes uint32) error {
	var p [endSize]byte
	binary.LittleEndian.PutUint32(p[:], passes)
	if err := w.record(KindEnd, p[:], nil); err != nil {
		return err
	}
	return w.Flush()
}

// Flush sends buffered records.
func (w *Writer) Flush() error { return w.w.Flush() }
