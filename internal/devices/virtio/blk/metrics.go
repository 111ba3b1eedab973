package blk

import (
	"time"

	"github.com/vireo-vmm/vireo/internal/metrics"
)

// opCounters count one kind of request.
type opCounters struct {
	ops, bytes, failed, ns metrics.Counter
}

// done counts a request that completed after moving n bytes.
func (o *opCounters) done(n uint64, start time.Time) {
	o.ops.Inc()
	o.bytes.Add(n)
	o.ns.Add(uint64(max(time.Since(start), 0)))
}

func (o *opCounters) snapshot() metrics.BlockOp {
	return metrics.BlockOp{Ops: o.ops.Load(), Bytes: o.bytes.Load(), Failed: o.failed.Load(), TimeNs: o.ns.Load()}
}

// counters are the device's running totals, kept for its lifetime
// (across driver resets and guest reboots).
type counters struct {
	read, write, flush, discard, writeZeroes opCounters
	invalid                                  metrics.Counter
	highest                                  metrics.Max
}

// Metrics returns the device's counters.
func (d *Device) Metrics() metrics.Block {
	c := &d.stats
	return metrics.Block{
		ID:           d.cfg.ID,
		Read:         c.read.snapshot(),
		Write:        c.write.snapshot(),
		Flush:        c.flush.snapshot(),
		Discard:      c.discard.snapshot(),
		WriteZeroes:  c.writeZeroes.snapshot(),
		Invalid:      c.invalid.Load(),
		HighestWrite: c.highest.Load(),
	}
}
