package migration

import (
	"context"
	"math/bits"
	"net"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// runBuilder groups consecutive pages of one region into Pages records:
// runs of data pages and runs of zero pages, at most MaxRunPages each.
type runBuilder struct {
	w      *Writer
	s      *Sender
	region uint32
	host   []byte // the region's host mapping
	start  uint64
	n      uint32
	zero   bool
	sent   uint64 // pages written in the current pass
}

// add queues page p of the region (zero: the page is all zero).
func (b *runBuilder) add(p uint64, zero bool) error {
	if b.n > 0 && (p != b.start+uint64(b.n) || zero != b.zero || b.n == MaxRunPages) {
		if err := b.flush(); err != nil {
			return err
		}
	}
	if b.n == 0 {
		b.start, b.zero = p, zero
	}
	b.n++
	return nil
}

// flush writes the queued run.
func (b *runBuilder) flush() error {
	if b.n == 0 {
		return nil
	}
	var err error
	if b.zero {
		err = b.w.ZeroPages(b.region, b.start, b.n)
	} else {
		err = b.w.Pages(b.region, b.start, b.host[b.start*PageSize:(b.start+uint64(b.n))*PageSize])
	}
	if err != nil {
		return err
	}
	b.s.counted(uint64(b.n), b.zero)
	b.sent += uint64(b.n)
	b.n = 0
	return nil
}

// counted updates the statistics for n pages just written.
func (s *Sender) counted(n uint64, zero bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if zero {
		s.info.RAM.Duplicate += n
	} else {
		s.info.RAM.Normal += n
		s.info.RAM.NormalBytes += n * PageSize
	}
	if s.info.RAM.Remaining >= n*PageSize {
		s.info.RAM.Remaining -= n * PageSize
	} else {
		s.info.RAM.Remaining = 0
	}
}

// sendAll sends every page of mem that is not zero; pages never touched
// (not resident in anonymous memory) are not even read. It returns the
// number of pages sent; zero pages count as duplicates.
func (s *Sender) sendAll(w *Writer, mem *guestmem.Memory) (uint64, error) {
	var total, zeros uint64
	s.mu.Lock()
	s.info.RAM.Remaining = mem.Size()
	s.mu.Unlock()
	anon := mem.Backing().File == nil
	for i, r := range mem.Regions() {
		b := runBuilder{w: w, s: s, region: uint32(i), host: r.Host}
		pages := r.Size / PageSize
		var resident []byte
		if anon {
			resident = make([]byte, pages)
			if mem.Residency(i, resident) != nil {
				resident = nil
			}
		}
		for p := uint64(0); p < pages; p++ {
			if resident != nil && resident[p]&1 == 0 || isZero(r.Host[p*PageSize:(p+1)*PageSize]) {
				zeros++
				continue
			}
			if err := b.add(p, false); err != nil {
				return 0, err
			}
		}
		if err := b.flush(); err != nil {
			return 0, err
		}
		total += b.sent
	}
	s.mu.Lock()
	s.info.RAM.Duplicate += zeros
	s.info.RAM.Remaining = 0
	s.mu.Unlock()
	return total, nil
}

// sendDirty sends the pages set in bitmaps, zero pages as zero runs.
func (s *Sender) sendDirty(w *Writer, mem *guestmem.Memory, bitmaps [][]uint64) (uint64, error) {
	var total uint64
	for i, r := range mem.Regions() {
		b := runBuilder{w: w, s: s, region: uint32(i), host: r.Host}
		pages := r.Size / PageSize
		for wi, word := range bitmaps[i] {
			for word != 0 {
				p := uint64(wi)*64 + uint64(bits.TrailingZeros64(word))
				word &= word - 1
				if p >= pages {
					break
				}
				if err := b.add(p, isZero(r.Host[p*PageSize:(p+1)*PageSize])); err != nil {
					return 0, err
				}
			}
		}
		if err := b.flush(); err != nil {
			return 0, err
		}
		total += b.sent
	}
	return total, nil
}

// meter is the connection as the Writer sees it: it counts the bytes
// sent, applies the bandwidth cap and bounds each write in time.
type meter struct {
	conn   net.Conn
	s      *Sender
	ctx    context.Context
	credit float64 // bytes that may go out now under the cap
	last   time.Time
}

func (m *meter) Write(p []byte) (int, error) {
	m.s.mu.Lock()
	limit := m.s.params.MaxBandwidth
	if m.s.unthrottled {
		limit = 0
	}
	m.s.mu.Unlock()
	if limit > 0 {
		if err := m.throttle(float64(limit), len(p)); err != nil {
			return 0, err
		}
	} else {
		m.last = time.Time{}
	}
	m.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	n, err := m.conn.Write(p)
	m.s.mu.Lock()
	m.s.info.RAM.Transferred += uint64(n)
	m.s.mu.Unlock()
	return n, err
}

// throttle waits until n more bytes fit under limit bytes per second. The
// credit accrues with time, up to a tenth of a second's worth.
func (m *meter) throttle(limit float64, n int) error {
	now := time.Now()
	if m.last.IsZero() {
		m.last, m.credit = now, 0
	}
	m.credit = min(m.credit+limit*now.Sub(m.last).Seconds(), limit/10)
	m.last = now
	m.credit -= float64(n)
	if m.credit >= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(-m.credit / limit * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-m.ctx.Done():
		return m.ctx.Err()
	}
}
