// Package metrics holds the counters Vireo's devices and vCPUs keep, the
// plain snapshot of them that every interface reads (QMP, the Firecracker
// metrics file, Prometheus, the Go package), and the Prometheus text
// exposition of that snapshot.
//
// Devices keep Counters, which cost one atomic add on the I/O path and
// never allocate; the VMM collects their values into a Snapshot on demand.
package metrics

import "sync/atomic"

// Counter is a running total, safe for concurrent use. The zero value is
// a counter at 0. It must not be copied after first use.
type Counter struct {
	v atomic.Uint64
}

// Add adds n and returns the new total.
func (c *Counter) Add(n uint64) uint64 { return c.v.Add(n) }

// Inc adds one and returns the new total.
func (c *Counter) Inc() uint64 { return c.v.Add(1) }

// Load returns the total.
func (c *Counter) Load() uint64 { return c.v.Load() }

// Store sets the total; it is meant for restoring saved counters.
func (c *Counter) Store(n uint64) { c.v.Store(n) }

// Max is a running maximum, safe for concurrent use (a high-water mark
// such as a disk's highest written offset). The zero value is 0.
type Max struct {
	v atomic.Uint64
}

// Observe raises the maximum to n if n is larger.
func (m *Max) Observe(n uint64) {
	for {
		cur := m.v.Load()
		if n <= cur || m.v.CompareAndSwap(cur, n) {
			return
		}
	}
}

// Load returns the maximum.
func (m *Max) Load() uint64 { return m.v.Load() }
