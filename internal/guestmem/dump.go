package guestmem

import (
	"bytes"
	"fmt"
	"os"
)

// DumpRegion is where one region's bytes went in a memory file.
type DumpRegion struct {
	GPA, Size uint64
	Offset    int64
}

// Dump writes every region into f, one after another, as a sparse file:
// pages that are all zero (including pages the guest never touched) are
// left as holes. It returns where each region starts. The guest must not
// run meanwhile.
func (m *Memory) Dump(f *os.File) ([]DumpRegion, error) {
	page := uint64(os.Getpagesize())
	zero := make([]byte, page)
	var out []DumpRegion
	var off int64
	for _, r := range m.regions {
		out = append(out, DumpRegion{GPA: r.GPA, Size: r.Size, Offset: off})
		// For anonymous memory a page that is not resident is zero; a
		// file-backed mapping may hold data in pages not yet faulted in.
		var resident []byte
		if m.backing.File == nil {
			resident = make([]byte, (r.Size+page-1)/page)
			if err := mincore(r.Host, resident); err != nil {
				resident = nil
			}
		}
		skip := func(p uint64) bool {
			return resident != nil && resident[p/page]&1 == 0 || bytes.Equal(r.Host[p:p+page], zero)
		}
		for p := uint64(0); p < r.Size; p += page {
			if skip(p) {
				continue
			}
			end := p + page
			for end < r.Size && !skip(end) {
				end += page
			}
			if _, err := f.WriteAt(r.Host[p:end], off+int64(p)); err != nil {
				return nil, fmt.Errorf("guestmem: writing memory: %w", err)
			}
			p = end - page
		}
		off += int64(r.Size)
	}
	if err := f.Truncate(off); err != nil {
		return nil, fmt.Errorf("guestmem: sizing memory file: %w", err)
	}
	return out, nil
}
