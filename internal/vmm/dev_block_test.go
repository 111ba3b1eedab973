package vmm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/blk"
)

func TestOpenDisks(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	disks := []DiskConfig{{Config: blk.Config{Path: a}}, {Config: blk.Config{Path: b, ReadOnly: true, ID: "data", Cache: blk.CacheNone}}}
	c := &Controller{cfg: Config{Devices: Devices{Disks: disks}}}
	closeAll, err := c.openDisks()
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if disks[0].ID != "" || disks[0].dev != nil {
		t.Error("openDisks changed the caller's slice")
	}
	m := &Machine{cfg: c.cfg}
	got := m.blockDevices()
	want := []BlockInfo{
		{ID: "disk0", Path: a, Format: "raw", Size: 1 << 20, Cache: "writeback"},
		{ID: "data", Path: b, Format: "raw", ReadOnly: true, Size: 1 << 20, Cache: "none"},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("blockDevices = %+v, want %+v", got, want)
	}

	// A duplicate id or a missing file fails the whole set.
	c = &Controller{cfg: Config{Devices: Devices{Disks: []DiskConfig{{Config: blk.Config{Path: a, ID: "x"}}, {Config: blk.Config{Path: b, ID: "x"}}}}}}
	if _, err := c.openDisks(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `"x" is used twice`) {
		t.Errorf("duplicate ids: %v", err)
	}
	c = &Controller{cfg: Config{Devices: Devices{Disks: []DiskConfig{{Config: blk.Config{Path: a}}, {Config: blk.Config{Path: filepath.Join(dir, "nope")}}}}}}
	if _, err := c.openDisks(); !errors.Is(err, blk.ErrOpen) || !strings.Contains(err.Error(), "disk disk1") {
		t.Errorf("missing image: %v", err)
	}
	c = &Controller{}
	if closeNone, err := c.openDisks(); err != nil {
		t.Error(err)
	} else {
		closeNone()
	}
}
