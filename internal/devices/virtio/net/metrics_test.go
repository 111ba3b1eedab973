package net

import (
	"testing"

	"github.com/vireo-vmm/vireo/internal/metrics"
)

// TestMetricsSumsPairs: Metrics adds up every queue pair's counters.
func TestMetricsSumsPairs(t *testing.T) {
	d, err := New(Config{Tap: "fake0", ID: "eth0", Queues: 2}, newFakeTap(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	for i := range d.stats {
		c := &d.stats[i]
		c.rxPackets.Add(uint64(1 + i))
		c.rxBytes.Add(uint64(100 * (1 + i)))
		c.rxDropped.Add(uint64(i))
		c.txPackets.Add(uint64(10 + i))
		c.txBytes.Add(uint64(1000 * (1 + i)))
		c.txDropped.Add(1)
	}
	want := metrics.Net{ID: "eth0", RxPackets: 3, RxBytes: 300, RxDropped: 1, TxPackets: 21, TxBytes: 3000, TxDropped: 2}
	if got := d.Metrics(); got != want {
		t.Errorf("Metrics() = %+v, want %+v", got, want)
	}
}
