package vsock

import "github.com/vireo-vmm/vireo/internal/metrics"

// counters are the device's running totals. The muxer of each activation
// adds to them from its goroutine; Metrics reads them from any.
type counters struct {
	rxPackets, rxBytes, txPackets, txBytes metrics.Counter
	connsAdded, connsRemoved, resets       metrics.Counter
}

// Metrics returns the device's counters since it was created.
func (d *Device) Metrics() metrics.Vsock { return d.ctr.snapshot() }

func (c *counters) snapshot() metrics.Vsock {
	return metrics.Vsock{
		RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(),
		TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(),
		ConnsAdded: c.connsAdded.Load(), ConnsRemoved: c.connsRemoved.Load(),
		Resets: c.resets.Load(),
	}
}
