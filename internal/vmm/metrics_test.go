package vmm

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/balloon"
	"github.com/vireo-vmm/vireo/internal/devices/virtio/blk"
	"github.com/vireo-vmm/vireo/internal/devices/virtio/rng"
)

// TestMachineMetrics: the snapshot holds every counting device, and
// nothing for the kinds the machine lacks.
func TestMachineMetrics(t *testing.T) {
	if got := (&Controller{}).Metrics(); got.VCPUs != nil || got.Disks != nil || got.RNG != nil {
		t.Errorf("a controller without a machine reports %+v", got)
	}
	img := filepath.Join(t.TempDir(), "d.raw")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := blk.Open(blk.Config{Path: img, ID: "d0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m := &Machine{virtio: virtioDevices{meters: meters{
		disks: []*blk.Device{d}, rng: rng.New(rng.Config{}), balloon: balloon.New(balloon.Config{}),
	}}}
	s := m.metrics()
	if len(s.Disks) != 1 || s.Disks[0].ID != "d0" || s.RNG == nil || s.Balloon == nil {
		t.Errorf("snapshot %+v", s)
	}
	if s.Vsock != nil || s.Nets != nil || s.Consoles != nil || s.VCPUs != nil {
		t.Errorf("snapshot has absent devices: %+v", s)
	}
}
