package guestmem

import (
	"fmt"
	"sync/atomic"
)

// PageSize is the granularity of dirty tracking: the x86 page, which is
// also KVM's dirty-log granularity.
const PageSize = 4096

// Device-write tracking.
//
// KVM's dirty log records the guest's own writes to its RAM, not the
// VMM's: a virtio device that fills a buffer or publishes a used-ring
// entry writes through the host mapping, which KVM never sees. While
// tracking is on, every write made through Memory's accessors (WriteAt,
// Zero, Put*) and every range a caller declares with MarkDirty sets the
// pages' bits in a VMM-side bitmap, which TakeDirty hands over and clears.
// Bits are set after the bytes are written, so a collection that clears a
// bit can never precede the write it stands for.
//
// Off, the cost is one atomic pointer load per accessor call.

// dirtyBitmaps holds one bitmap per region, one bit per page.
type dirtyBitmaps struct {
	regions [][]atomic.Uint64
}

// StartDirtyTracking starts recording device writes, with every bit clear.
// Calling it while tracking restarts with a clear bitmap.
func (m *Memory) StartDirtyTracking() {
	d := &dirtyBitmaps{regions: make([][]atomic.Uint64, len(m.regions))}
	for i, r := range m.regions {
		d.regions[i] = make([]atomic.Uint64, BitmapWords(r.Size))
	}
	m.dirty.Store(d)
}

// StopDirtyTracking stops recording device writes and drops the bitmap.
func (m *Memory) StopDirtyTracking() { m.dirty.Store(nil) }

// DirtyTracking reports whether device writes are being recorded.
func (m *Memory) DirtyTracking() bool { return m.dirty.Load() != nil }

// MarkDirty records that [gpa, gpa+n) was written by the VMM. Callers
// that write guest memory through slices obtained with Slice call it
// after writing; the accessors that write call it themselves. Ranges
// outside guest RAM are ignored. It does nothing while tracking is off.
func (m *Memory) MarkDirty(gpa, n uint64) {
	d := m.dirty.Load()
	if d == nil || n == 0 {
		return
	}
	for i := range m.regions {
		r := &m.regions[i]
		if gpa+n <= r.GPA || gpa >= r.GPA+r.Size || gpa+n < gpa {
			continue
		}
		start := max(gpa, r.GPA) - r.GPA
		end := min(gpa+n, r.GPA+r.Size) - r.GPA
		bits := d.regions[i]
		for p := start / PageSize; p <= (end-1)/PageSize; p++ {
			w := &bits[p/64]
			if mask := uint64(1) << (p % 64); w.Load()&mask == 0 {
				w.Or(mask)
			}
		}
	}
}

// TakeDirty ORs the device-write bits of region i into dst (one bit per
// page, as BitmapWords sizes it) and clears them. It does nothing while
// tracking is off.
func (m *Memory) TakeDirty(i int, dst []uint64) error {
	d := m.dirty.Load()
	if d == nil {
		return nil
	}
	if i < 0 || i >= len(d.regions) {
		return fmt.Errorf("guestmem: no region %d: %w", i, ErrOutOfRange)
	}
	bits := d.regions[i]
	if len(dst) < len(bits) {
		return fmt.Errorf("guestmem: dirty bitmap of %d words for region %d, need %d", len(dst), i, len(bits))
	}
	for j := range bits {
		if bits[j].Load() != 0 {
			dst[j] |= bits[j].Swap(0)
		}
	}
	return nil
}

// BitmapWords is the number of 64-bit words of a bitmap with one bit per
// page of a region of size bytes.
func BitmapWords(size uint64) int {
	pages := (size + PageSize - 1) / PageSize
	return int((pages + 63) / 64)
}

// Residency fills vec (one byte per page of region i, as mincore(2)
// reports) with bit 0 set for pages resident in host memory. For
// anonymous memory a page that is not resident has never been written
// and reads as zero; for a file-backed mapping it may hold file data.
func (m *Memory) Residency(i int, vec []byte) error {
	if i < 0 || i >= len(m.regions) {
		return fmt.Errorf("guestmem: no region %d: %w", i, ErrOutOfRange)
	}
	r := &m.regions[i]
	if uint64(len(vec)) < (r.Size+PageSize-1)/PageSize {
		return fmt.Errorf("guestmem: residency vector of %d bytes for %d pages", len(vec), r.Size/PageSize)
	}
	if err := mincore(r.Host, vec); err != nil {
		return fmt.Errorf("guestmem: mincore: %w", err)
	}
	return nil
}
