package fcapi

import (
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/blk"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

func TestAttachDrives(t *testing.T) {
	yes, no := true, false
	uuid := "0eaa91a0-01"
	wb, unsafe := "Writeback", "Unsafe"
	r := &resources{drives: []drive{
		{DriveID: "rootfs", PathOnHost: "/img/root.ext4", IsRootDevice: true, IsReadOnly: &no, CacheType: &wb, Partuuid: &uuid},
		{DriveID: "scratch_disk_with_a_long_id", PathOnHost: "/img/data.raw", IsReadOnly: &yes, CacheType: &unsafe},
	}}
	cfg := vmm.Config{Cmdline: "console=ttyS0"}
	if err := attachDrives(&cfg, r); err != nil {
		t.Fatal(err)
	}
	want := []blk.Config{
		{Path: "/img/root.ext4", ID: "rootfs", Serial: "rootfs", Cache: blk.CacheWriteback, Format: blk.FormatRaw},
		{Path: "/img/data.raw", ReadOnly: true, ID: "scratch_disk_with_a_long_id", Serial: "scratch_disk_with_a_", Cache: blk.CacheUnsafe, Format: blk.FormatRaw},
	}
	if len(cfg.Disks) != 2 || cfg.Disks[0].Config != want[0] || cfg.Disks[1].Config != want[1] {
		t.Fatalf("disks %+v, want %+v", cfg.Disks, want)
	}
	if cfg.Cmdline != "console=ttyS0 root=PARTUUID=0eaa91a0-01 rw" {
		t.Errorf("cmdline %q", cfg.Cmdline)
	}

	// A read-only root without a partuuid.
	cfg = vmm.Config{}
	if err := attachDrives(&cfg, &resources{drives: []drive{{DriveID: "r", PathOnHost: "/r", IsRootDevice: true, IsReadOnly: &yes}}}); err != nil {
		t.Fatal(err)
	}
	if cfg.Cmdline != "root=/dev/vda ro" || cfg.Disks[0].Cache != blk.CacheUnsafe {
		t.Errorf("read-only root: cmdline %q, cache %s", cfg.Cmdline, cfg.Disks[0].Cache)
	}
	// No root device: no root argument.
	cfg = vmm.Config{Cmdline: "quiet"}
	if err := attachDrives(&cfg, &resources{drives: []drive{{DriveID: "d", PathOnHost: "/d"}}}); err != nil {
		t.Fatal(err)
	}
	if cfg.Cmdline != "quiet" || len(cfg.Disks) != 1 {
		t.Errorf("without a root: cmdline %q, %d disks", cfg.Cmdline, len(cfg.Disks))
	}
	// Rate limiters are refused unless disabled.
	off := &rateLimiter{Bandwidth: &tokenBucket{Size: 0, RefillTime: 100}}
	if err := attachDrives(&vmm.Config{}, &resources{drives: []drive{{DriveID: "d", PathOnHost: "/d", RateLimiter: off}}}); err != nil {
		t.Errorf("disabled rate limiter: %v", err)
	}
	on := &rateLimiter{Ops: &tokenBucket{Size: 100, RefillTime: 1000}}
	err := attachDrives(&vmm.Config{}, &resources{drives: []drive{{DriveID: "d", PathOnHost: "/d", RateLimiter: on}}})
	if err == nil || !strings.Contains(err.Error(), `drive "d": virtio-blk: rate limiters are not supported`) {
		t.Errorf("enabled rate limiter: %v", err)
	}
}
