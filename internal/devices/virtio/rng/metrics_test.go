package rng

import (
	"testing"

	"github.com/vireo-vmm/vireo/internal/metrics"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// TestMetrics: each filled buffer is one request and its bytes.
func TestMetrics(t *testing.T) {
	r := newRig(t, Config{Source: &pattern{}}, 16, features)
	r.drv.AddChain(virtiotest.Buf{Addr: r.drv.Alloc(64), Len: 64, Write: true})
	r.drv.AddChain(virtiotest.Buf{Addr: r.drv.Alloc(32), Len: 32, Write: true})
	r.notify.Signal()
	r.used(t)
	r.used(t)
	if got, want := r.dev.Metrics(), (metrics.RNG{Requests: 2, Bytes: 96}); got != want {
		t.Errorf("Metrics() = %+v, want %+v", got, want)
	}
}
