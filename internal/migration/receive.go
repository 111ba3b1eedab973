package migration

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// maxRAM bounds the total RAM a Setup record may describe (64 TiB).
const maxRAM = 1 << 46

// Incoming is what a complete stream delivered.
type Incoming struct {
	// Memory holds the VM's RAM; the caller owns it.
	Memory *guestmem.Memory
	// Setup is the machine description of the Setup record.
	Setup []byte
	// State is the device state document.
	State []byte
	// Passes is the number of RAM passes; Pages the pages received.
	Passes int
	Pages  uint64
	// Verified is the number of pages checked against the source's
	// checksums (Verify records).
	Verified uint64
}

// Receiver reads a stream into fresh guest memory.
type Receiver struct {
	// Alloc returns zero-filled guest memory with exactly the regions
	// the source announced; doc is the source's machine description,
	// which Alloc may check and refuse. Required.
	Alloc func(regions []guestmem.RegionSpec, doc []byte) (*guestmem.Memory, error)
	// OnSetup, if set, is called once the memory is allocated.
	OnSetup func()
	// OnPass, if set, is called after each complete pass.
	OnPass func(pass int, pages uint64)
}

// Receive reads a whole stream, header to End, from r. Nothing is
// trusted: every record is checked against the layout and the order of
// the stream. On error the memory allocated so far is released.
func (rc *Receiver) Receive(r io.Reader) (_ *Incoming, err error) {
	sr := NewReader(r)
	if err := sr.Header(); err != nil {
		return nil, err
	}
	in := &Incoming{}
	defer func() {
		if err != nil && in.Memory != nil {
			in.Memory.Close()
			in.Memory = nil
		}
	}()
	var (
		regions   []guestmem.RegionSpec
		inPass    uint64 // pages since the last PassEnd
		haveState bool
		bad       mismatches
	)
	for {
		rec, err := sr.Next()
		if err != nil {
			return nil, err
		}
		switch {
		case rec.Kind == KindSetup:
			if regions != nil {
				return nil, fmt.Errorf("%w: a second setup record", ErrProtocol)
			}
			if err := checkLayout(rec.Regions); err != nil {
				return nil, err
			}
			regions = rec.Regions
			in.Setup = bytes.Clone(rec.Doc)
			if in.Memory, err = rc.alloc(regions, in.Setup); err != nil {
				return nil, err
			}
			if rc.OnSetup != nil {
				rc.OnSetup()
			}
		case regions == nil:
			return nil, fmt.Errorf("%w: %s record before the setup record", ErrProtocol, rec.Kind)
		case rec.Kind == KindVerify:
			if !haveState {
				return nil, fmt.Errorf("%w: verify record before the state record", ErrProtocol)
			}
			if err := verifyPages(in.Memory, regions, rec, &bad); err != nil {
				return nil, err
			}
			in.Verified += uint64(rec.Count)
		case haveState && rec.Kind != KindEnd:
			return nil, fmt.Errorf("%w: %s record after the state record", ErrProtocol, rec.Kind)
		case rec.Kind == KindPages:
			if err := applyPages(in.Memory, regions, rec); err != nil {
				return nil, err
			}
			inPass += uint64(rec.Count)
			in.Pages += uint64(rec.Count)
		case rec.Kind == KindPassEnd:
			if rec.Pass != uint32(in.Passes)+1 {
				return nil, fmt.Errorf("%w: pass %d ends after pass %d", ErrProtocol, rec.Pass, in.Passes)
			}
			if rec.Pages != inPass {
				return nil, fmt.Errorf("%w: pass %d announces %d pages, %d arrived", ErrProtocol, rec.Pass, rec.Pages, inPass)
			}
			in.Passes++
			inPass = 0
			if rc.OnPass != nil {
				rc.OnPass(in.Passes, rec.Pages)
			}
		case rec.Kind == KindState:
			if in.Passes == 0 || inPass != 0 {
				return nil, fmt.Errorf("%w: state record inside a RAM pass", ErrProtocol)
			}
			in.State = bytes.Clone(rec.Doc)
			haveState = true
		case rec.Kind == KindEnd:
			if !haveState {
				return nil, fmt.Errorf("%w: end record before the state record", ErrProtocol)
			}
			if int(rec.Pass) != in.Passes {
				return nil, fmt.Errorf("%w: the source counts %d passes, %d arrived", ErrProtocol, rec.Pass, in.Passes)
			}
			if bad.n > 0 {
				return nil, fmt.Errorf("%w: %d of %d checked pages differ, first ones at GPA %#x", ErrVerify, bad.n, in.Verified, bad.first)
			}
			return in, nil
		}
	}
}

func (rc *Receiver) alloc(regions []guestmem.RegionSpec, doc []byte) (*guestmem.Memory, error) {
	mem, err := rc.Alloc(regions, doc)
	if err != nil {
		return nil, err
	}
	got := mem.Regions()
	ok := len(got) == len(regions)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].GPA == regions[i].GPA && got[i].Size == regions[i].Size
	}
	if !ok {
		mem.Close()
		return nil, fmt.Errorf("%w: the memory allocated does not have the announced regions", ErrLayout)
	}
	return mem, nil
}

// checkLayout validates an announced RAM layout: page-aligned, non-empty,
// ordered, non-overlapping regions of bounded total size.
func checkLayout(regions []guestmem.RegionSpec) error {
	var end, total uint64
	for i, r := range regions {
		switch {
		case r.Size == 0 || r.Size%PageSize != 0 || r.GPA%PageSize != 0:
			return fmt.Errorf("%w: region %d (%#x+%#x) is not page aligned", ErrLayout, i, r.GPA, r.Size)
		case r.Size > maxRAM || r.GPA > maxRAM:
			return fmt.Errorf("%w: region %d (%#x+%#x) is too large", ErrLayout, i, r.GPA, r.Size)
		case i > 0 && r.GPA < end:
			return fmt.Errorf("%w: region %d overlaps or is out of order", ErrLayout, i)
		}
		end = r.GPA + r.Size
		total += r.Size
	}
	if total > maxRAM {
		return fmt.Errorf("%w: %d bytes of RAM", ErrLayout, total)
	}
	return nil
}

// recordRun checks that the run of pages a Pages or Verify record names
// lies inside its region and returns the run's guest address and memory;
// kind names the record in errors.
func recordRun(mem *guestmem.Memory, regions []guestmem.RegionSpec, rec *Record, kind string) (uint64, []byte, error) {
	if uint64(rec.Region) >= uint64(len(regions)) {
		return 0, nil, fmt.Errorf("%w: %s record names region %d, the layout has %d", ErrRecord, kind, rec.Region, len(regions))
	}
	reg := regions[rec.Region]
	pages := reg.Size / PageSize
	if rec.First >= pages || uint64(rec.Count) > pages-rec.First {
		return 0, nil, fmt.Errorf("%w: %s record names pages %d+%d outside region %d (%d pages)", ErrRecord, kind, rec.First, rec.Count, rec.Region, pages)
	}
	gpa := reg.GPA + rec.First*PageSize
	b, err := mem.Slice(gpa, uint64(rec.Count)*PageSize)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s record at %#x: %w", ErrRecord, kind, gpa, err)
	}
	return gpa, b, nil
}

// applyPages writes one Pages record into memory after checking that the
// run lies inside its region.
func applyPages(mem *guestmem.Memory, regions []guestmem.RegionSpec, rec *Record) error {
	_, dst, err := recordRun(mem, regions, rec, "Pages")
	if err != nil {
		return err
	}
	if !rec.Zero {
		copy(dst, rec.Data)
		return nil
	}
	// Pages already zero (untouched ones above all) are left alone, so
	// they do not become resident.
	for p := 0; p < len(dst); p += PageSize {
		if pg := dst[p : p+PageSize]; !isZero(pg) {
			clear(pg)
		}
	}
	return nil
}

// mismatches counts pages whose checksum differs and keeps the address
// of the first.
type mismatches struct {
	n     uint64
	first []uint64
}

// verifyPages compares the pages a Verify record covers with their
// checksums.
func verifyPages(mem *guestmem.Memory, regions []guestmem.RegionSpec, rec *Record, bad *mismatches) error {
	gpa, host, err := recordRun(mem, regions, rec, "Verify")
	if err != nil {
		return err
	}
	for i := uint64(0); i < uint64(rec.Count); i++ {
		want := binary.LittleEndian.Uint32(rec.Sums[4*i:])
		if PageChecksum(host[i*PageSize:(i+1)*PageSize]) != want {
			if bad.n < 8 {
				bad.first = append(bad.first, gpa+i*PageSize)
			}
			bad.n++
		}
	}
	return nil
}

var zeroPage [PageSize]byte

// isZero reports whether a page holds only zero bytes.
func isZero(page []byte) bool { return bytes.Equal(page, zeroPage[:]) }
