package vmm

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/balloon"
	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/kvm"
	"github.com/vireo-vmm/vireo/internal/testutil"
)

func TestBalloonPagesFor(t *testing.T) {
	for _, c := range []struct {
		mem, target uint64
		want        uint32
	}{
		{256 << 20, 192 << 20, 64 << 8},
		{256 << 20, 256 << 20, 0},
		{256 << 20, 1 << 40, 0},
		{256 << 20, 0, 256 << 8},
		{256 << 20, 192<<20 + 100, 64<<8 - 1},
	} {
		if got := balloonPagesFor(c.mem, c.target); got != c.want {
			t.Errorf("balloonPagesFor(%d, %d) = %d, want %d", c.mem, c.target, got, c.want)
		}
	}
	if got := (BalloonInfo{MemoryBytes: 64 << 20, ActualPages: 1 << 30}).GuestBytes(); got != 0 {
		t.Errorf("GuestBytes with an impossible actual = %d", got)
	}
}

// TestBalloonOnMachine wires a balloon into a machine (no vCPUs) and
// drives the controller's balloon and memory-report actions directly.
func TestBalloonOnMachine(t *testing.T) {
	testutil.RequireKVM(t)
	sys, err := kvm.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := vm.CreateIRQChip(); err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	mem, err := guestmem.New([]guestmem.RegionSpec{{GPA: 0, Size: size}}, guestmem.Backing{HugePages: "thp", Merge: true})
	if err != nil {
		t.Skipf("THP or KSM unavailable: %v", err)
	}
	defer mem.Close()
	cfg := Config{MemoryBytes: size, Devices: Devices{Balloon: &BalloonConfig{StatsInterval: time.Second, TargetPages: 1 << 30}}}
	m := &Machine{cfg: cfg, vm: vm, mem: mem, log: slog.New(slog.DiscardHandler)}
	defer m.closeVirtio()
	if err := m.setupBalloon(); err != nil {
		t.Fatal(err)
	}
	dev := m.balloon()
	if dev == nil || dev.Target() != size/balloon.PageSize {
		t.Fatalf("balloon %v: the boot target is not clamped to guest RAM", dev)
	}
	if !strings.Contains(m.kernelCmdline(), "virtio_mmio.device=4K@0xd0000000:5") {
		t.Errorf("command line %q", m.kernelCmdline())
	}
	c := &Controller{cfg: cfg}

	// Setting a target updates the device and the configuration a rebuilt
	// machine uses.
	if err := c.balloon(m, balloonRequest{op: balloonSetTarget, pages: 1 << 31}); err != nil {
		t.Fatal(err)
	}
	if err := c.balloon(m, balloonRequest{op: balloonSetTarget, pages: 512}); err != nil {
		t.Fatal(err)
	}
	if dev.Target() != 512 || c.cfg.Balloon.TargetPages != 512 || cfg.Balloon.TargetPages != 1<<30 {
		t.Errorf("target %d, controller config %d, caller's config %d", dev.Target(), c.cfg.Balloon.TargetPages, cfg.Balloon.TargetPages)
	}
	if err := c.balloon(m, balloonRequest{op: balloonSetInterval, interval: 0}); !errors.Is(err, balloon.ErrStatsInterval) {
		t.Errorf("interval 0: %v", err)
	}
	if err := c.balloon(m, balloonRequest{op: balloonSetInterval, interval: 3 * time.Second}); err != nil || c.cfg.Balloon.StatsInterval != 3*time.Second {
		t.Errorf("interval 3s: %v, config %v", err, c.cfg.Balloon.StatsInterval)
	}
	var info BalloonInfo
	if err := c.balloon(m, balloonRequest{op: balloonQuery, info: &info}); err != nil {
		t.Fatal(err)
	}
	if info.TargetPages != 512 || info.GuestBytes() != size || info.StatsInterval != 3*time.Second {
		t.Errorf("info %+v", info)
	}

	// The driver's actual becomes a BALLOON_CHANGE event.
	var got []Event
	c.Subscribe(func(ev Event) { got = append(got, ev) })
	dev.WriteConfig(4, []byte{0, 1, 0, 0}) // 256 pages
	select {
	case <-m.balloonChanges():
		c.balloonChanged(m)
	case <-time.After(5 * time.Second):
		t.Fatal("no change signalled")
	}
	if len(got) != 1 || got[0].Kind != EventBalloonChange || got[0].BalloonActual != size-1<<20 {
		t.Errorf("events %+v", got)
	}

	// The memory report sees the guest RAM mapping as it was made.
	if err := mem.Zero(0, 8<<20); err != nil {
		t.Fatal(err)
	}
	r, err := c.memoryReport(m)
	if err != nil {
		t.Fatal(err)
	}
	if r.GuestBytes != size || r.HugePages != "thp" || !r.Merge || r.Resident < 8<<20 || r.ProcessRSS < r.Resident ||
		r.Mapping.Mappings != 1 || !strings.Contains(r.Mapping.Flags, "hg") || !strings.Contains(r.Mapping.Flags, "mg") ||
		r.Balloon == nil || r.Balloon.ActualPages != 256 {
		t.Errorf("report %+v", r)
	}
	// A machine without a balloon answers ErrNoBalloon.
	bare := &Machine{cfg: Config{MemoryBytes: size}, mem: mem}
	if err := c.balloon(bare, balloonRequest{op: balloonQuery, info: &info}); !errors.Is(err, ErrNoBalloon) {
		t.Errorf("no balloon: %v", err)
	}
	if bare.balloonChanges() != nil {
		t.Error("a machine without a balloon has a change channel")
	}
}
