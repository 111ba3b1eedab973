// Package bus routes port-I/O and MMIO accesses from vCPU exits to devices.
//
// A Bus maps non-overlapping address ranges to Devices. Lookups happen on the
// vCPU exit path, so they take no locks and do not allocate: the range table
// is an immutable sorted slice swapped atomically when devices are added or
// removed (hotplug).
package bus

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// Device is an emulated device register window. off is relative to the
// start of the range the device was inserted at. data is the access width
// (1, 2, 4 or 8 bytes, little endian). Implementations must not retain data
// and must not allocate on the common path.
type Device interface {
	Read(off uint64, data []byte)
	Write(off uint64, data []byte)
}

// ErrOverlap is returned when a new range overlaps an existing one.
var ErrOverlap = errors.New("bus: address range overlaps an existing device")

type entry struct {
	base, size uint64
	dev        Device
}

// Bus is a set of address ranges. The zero value is an empty bus.
type Bus struct {
	mu      sync.Mutex // serialises writers
	entries atomic.Pointer[[]entry]
}

// Insert maps dev at [base, base+size).
func (b *Bus) Insert(dev Device, base, size uint64) error {
	if size == 0 || base+size < base {
		return fmt.Errorf("bus: invalid range %#x+%#x", base, size)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var old []entry
	if p := b.entries.Load(); p != nil {
		old = *p
	}
	for _, e := range old {
		if base < e.base+e.size && e.base < base+size {
			return fmt.Errorf("%w: %#x+%#x and %#x+%#x", ErrOverlap, base, size, e.base, e.size)
		}
	}
	n := make([]entry, 0, len(old)+1)
	n = append(n, old...)
	n = append(n, entry{base, size, dev})
	sort.Slice(n, func(i, j int) bool { return n[i].base < n[j].base })
	b.entries.Store(&n)
	return nil
}

// Remove unmaps the range that starts at base.
func (b *Bus) Remove(base uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.entries.Load()
	if p == nil {
		return false
	}
	n := make([]entry, 0, len(*p))
	found := false
	for _, e := range *p {
		if e.base == base {
			found = true
			continue
		}
		n = append(n, e)
	}
	b.entries.Store(&n)
	return found
}

func (b *Bus) find(addr uint64) (Device, uint64, bool) {
	p := b.entries.Load()
	if p == nil {
		return nil, 0, false
	}
	es := *p
	lo, hi := 0, len(es)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if es[m].base+es[m].size <= addr {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(es) && es[lo].base <= addr && addr < es[lo].base+es[lo].size {
		return es[lo].dev, addr - es[lo].base, true
	}
	return nil, 0, false
}

// Read dispatches a read at addr. It reports whether a device claimed it;
// unclaimed reads return all ones, as on real hardware.
func (b *Bus) Read(addr uint64, data []byte) bool {
	dev, off, ok := b.find(addr)
	if !ok {
		for i := range data {
			data[i] = 0xff
		}
		return false
	}
	dev.Read(off, data)
	return true
}

// Write dispatches a write at addr and reports whether a device claimed it.
func (b *Bus) Write(addr uint64, data []byte) bool {
	dev, off, ok := b.find(addr)
	if !ok {
		return false
	}
	dev.Write(off, data)
	return true
}
