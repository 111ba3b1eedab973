package balloon

import (
	"testing"

	"github.com/vireo-vmm/vireo/internal/metrics"
)

// TestMetrics: inflate and deflate requests are counted with their pages.
func TestMetrics(t *testing.T) {
	r := startRig(t, Config{}, base)
	touch(t, r.mem, dataGPA, 16*PageSize)
	r.drv[roleInflate].AddChain(r.pfnBuffer(roleInflate, pages(dataGPA, 8)...))
	r.drv[roleInflate].AddChain(r.pfnBuffer(roleInflate, pages(dataGPA+8*PageSize, 8)...))
	r.kick()
	r.used(t, roleInflate)
	r.used(t, roleInflate)
	r.drv[roleDeflate].AddChain(r.pfnBuffer(roleDeflate, pages(dataGPA, 4)...))
	r.kick()
	r.used(t, roleDeflate)
	want := metrics.Balloon{Inflates: 2, Deflates: 1, InflatedPages: 16, DeflatedPages: 4, Discarded: 16 * PageSize}
	if got := r.dev.Metrics(); got != want {
		t.Errorf("Metrics() = %+v, want %+v", got, want)
	}
}
