package migration

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// Record is one decoded record. The fields that apply depend on Kind;
// Data and Doc alias the Reader's buffers and are valid until the next
// call to Next.
type Record struct {
	Kind Kind
	// Setup: the RAM layout and the machine description.
	Regions []guestmem.RegionSpec
	// Pages: Count pages of Region from page First; Data holds them, or
	// Zero is set and Data is empty.
	Region uint32
	First  uint64
	Count  uint32
	Zero   bool
	Data   []byte
	// PassEnd: the pass number and its page count. End: Pass is the
	// number of passes.
	Pass  uint32
	Pages uint64
	// Setup and State: the document.
	Doc []byte
	// Verify: Count page checksums of Region from page First.
	Sums []byte
}

// Reader decodes a stream. Every length is checked against its kind's
// maximum before anything is read, and large payloads grow their buffer
// only as bytes arrive, so a lying length costs no memory. It is not safe
// for concurrent use.
type Reader struct {
	r     io.Reader
	rec   Record
	small [64]byte     // PassEnd and End payloads
	pages []byte       // one Pages payload, allocated on first use
	doc   bytes.Buffer // Setup and State payloads
	n     int64        // bytes consumed
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Consumed is the number of stream bytes read so far.
func (r *Reader) Consumed() int64 { return r.n }

func (r *Reader) readFull(p []byte) error {
	n, err := io.ReadFull(r.r, p)
	r.n += int64(n)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return err
}

// Header reads and checks the stream header.
func (r *Reader) Header() error {
	var h [streamHeaderSize]byte
	if err := r.readFull(h[:]); err != nil {
		return err
	}
	if string(h[:8]) != Magic {
		return ErrNotStream
	}
	if v := binary.LittleEndian.Uint32(h[8:]); v != Version {
		return fmt.Errorf("%w: the source sends version %d, this Vireo reads version %d", ErrVersion, v, Version)
	}
	if f := binary.LittleEndian.Uint32(h[12:]); f != 0 {
		return fmt.Errorf("%w: unknown stream flags %#x", ErrVersion, f)
	}
	return nil
}

// Next reads, checks and decodes the next record.
func (r *Reader) Next() (*Record, error) {
	var h [recordHeaderSize]byte
	if err := r.readFull(h[:]); err != nil {
		return nil, err
	}
	k := Kind(h[0])
	n := int64(binary.LittleEndian.Uint32(h[4:]))
	max := maxPayload(k)
	switch {
	case max < 0:
		return nil, fmt.Errorf("%w: unknown record kind %d", ErrRecord, h[0])
	case h[1]|h[2]|h[3] != 0:
		return nil, fmt.Errorf("%w: %s record with non-zero reserved bytes", ErrRecord, k)
	case n > max:
		return nil, fmt.Errorf("%w: %s record of %d bytes (at most %d)", ErrRecord, k, n, max)
	}
	payload, err := r.payload(k, n)
	if err != nil {
		return nil, err
	}
	var sum [crcSize]byte
	if err := r.readFull(sum[:]); err != nil {
		return nil, err
	}
	crc := crc32.Update(crc32.Update(0, castagnoli, h[:]), castagnoli, payload)
	if crc != binary.LittleEndian.Uint32(sum[:]) {
		return nil, fmt.Errorf("%w: %s record of %d bytes", ErrChecksum, k, n)
	}
	r.rec = Record{Kind: k}
	if err := r.decode(&r.rec, payload); err != nil {
		return nil, err
	}
	return &r.rec, nil
}

// payload reads n bytes into the buffer that suits kind k.
func (r *Reader) payload(k Kind, n int64) ([]byte, error) {
	switch k {
	case KindPages, KindVerify:
		if r.pages == nil {
			r.pages = make([]byte, max(maxPayload(KindPages), maxPayload(KindVerify)))
		}
		p := r.pages[:n]
		return p, r.readFull(p)
	case KindSetup, KindState:
		r.doc.Reset()
		got, err := io.CopyN(&r.doc, r.r, n)
		r.n += got
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, ErrTruncated
			}
			return nil, err
		}
		return r.doc.Bytes(), nil
	}
	p := r.small[:n]
	return p, r.readFull(p)
}

// decode fills rec from a checked payload.
func (r *Reader) decode(rec *Record, p []byte) error {
	le := binary.LittleEndian
	switch rec.Kind {
	case KindSetup:
		if len(p) < 4 {
			return fmt.Errorf("%w: setup record of %d bytes", ErrRecord, len(p))
		}
		cnt := le.Uint32(p)
		if cnt == 0 || cnt > MaxRegions || uint64(len(p)) < 4+16*uint64(cnt) {
			return fmt.Errorf("%w: setup record with %d regions in %d bytes", ErrRecord, cnt, len(p))
		}
		rec.Regions = make([]guestmem.RegionSpec, cnt)
		for i := range rec.Regions {
			rec.Regions[i] = guestmem.RegionSpec{GPA: le.Uint64(p[4+16*i:]), Size: le.Uint64(p[12+16*i:])}
		}
		rec.Doc = p[4+16*cnt:]
	case KindPages:
		if len(p) < pagesHeaderSize {
			return fmt.Errorf("%w: pages record of %d bytes", ErrRecord, len(p))
		}
		rec.Region, rec.First, rec.Count = le.Uint32(p[0:]), le.Uint64(p[8:]), le.Uint32(p[16:])
		flags := le.Uint32(p[4:])
		rec.Zero = flags&FlagZero != 0
		want := uint64(0)
		if !rec.Zero {
			want = uint64(rec.Count) * PageSize
		}
		switch {
		case flags&^FlagZero != 0:
			return fmt.Errorf("%w: pages record with unknown flags %#x", ErrRecord, flags)
		case rec.Count == 0 || rec.Count > MaxRunPages:
			return fmt.Errorf("%w: a run of %d pages", ErrRecord, rec.Count)
		case uint64(len(p)-pagesHeaderSize) != want:
			return fmt.Errorf("%w: a run of %d pages carries %d bytes", ErrRecord, rec.Count, len(p)-pagesHeaderSize)
		}
		rec.Data = p[pagesHeaderSize:]
	case KindPassEnd:
		if len(p) != passEndSize {
			return fmt.Errorf("%w: pass-end record of %d bytes", ErrRecord, len(p))
		}
		rec.Pass, rec.Pages = le.Uint32(p), le.Uint64(p[4:])
	case KindState:
		if len(p) == 0 {
			return fmt.Errorf("%w: empty state record", ErrRecord)
		}
		rec.Doc = p
	case KindVerify:
		if len(p) < pagesHeaderSize {
			return fmt.Errorf("%w: verify record of %d bytes", ErrRecord, len(p))
		}
		rec.Region, rec.First, rec.Count = le.Uint32(p[0:]), le.Uint64(p[8:]), le.Uint32(p[16:])
		switch {
		case le.Uint32(p[4:]) != 0:
			return fmt.Errorf("%w: verify record with flags %#x", ErrRecord, le.Uint32(p[4:]))
		case rec.Count == 0 || rec.Count > MaxVerifyPages || uint64(len(p)-pagesHeaderSize) != 4*uint64(rec.Count):
			return fmt.Errorf("%w: verify record of %d checksums in %d bytes", ErrRecord, rec.Count, len(p)-pagesHeaderSize)
		}
		rec.Sums = p[pagesHeaderSize:]
	case KindEnd:
		if len(p) != endSize {
			return fmt.Errorf("%w: end record of %d bytes", ErrRecord, len(p))
		}
		rec.Pass = le.Uint32(p)
	}
	return nil
}
