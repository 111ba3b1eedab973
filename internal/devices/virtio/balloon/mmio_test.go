package balloon

import (
	"encoding/binary"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/mmio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

type edges struct{ n atomic.Int32 }

func (e *edges) Trigger() error { e.n.Add(1); return nil }

// TestBehindMMIO brings the balloon up through the virtio-mmio registers
// as Linux does when it declines the statistics queue it was offered: the
// transport has three queues, the driver sets up two. Then it changes the
// target (a configuration interrupt), and inflates through QueueNotify.
func TestBehindMMIO(t *testing.T) {
	mem := virtiotest.NewMemory(t, memSize)
	irq := &edges{}
	dev := New(Config{StatsInterval: time.Second, TargetPages: 5})
	tr, err := mmio.New(dev, mem, mmio.WithTrigger(irq), mmio.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	rd := func(off uint64) uint32 {
		var b [4]byte
		tr.Read(off, b[:])
		return binary.LittleEndian.Uint32(b[:])
	}
	wr := func(off uint64, v uint32) {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], v)
		tr.Write(off, b[:])
	}
	if rd(0x008) != uint32(virtio.IDBalloon) {
		t.Fatal("device ID")
	}
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver)
	wr(0x014, 0)
	if f := rd(0x010); f&FeatureStatsVQ == 0 {
		t.Fatalf("features %#x lack STATS_VQ", f)
	}
	wr(0x024, 0)
	wr(0x020, 0) // no balloon features
	wr(0x024, 1)
	wr(0x020, 1) // VERSION_1
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK)
	var drv [2]*virtiotest.Driver
	for i := range drv {
		drv[i] = virtiotest.NewDriver(t, mem, 16, 0x4000+uint64(i)*0x10000, 0x4000+uint64(i+1)*0x10000)
		cfg := drv[i].Config()
		wr(0x030, uint32(i))
		if rd(0x034) != QueueSize {
			t.Fatalf("queue %d maximum %d", i, rd(0x034))
		}
		wr(0x038, uint32(cfg.Size))
		wr(0x080, uint32(cfg.DescTable))
		wr(0x090, uint32(cfg.AvailRing))
		wr(0x0a0, uint32(cfg.UsedRing))
		wr(0x044, 1)
	}
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK|virtio.StatusDriverOK)
	if s := rd(0x070); s&virtio.StatusDeviceNeedsReset != 0 || s&virtio.StatusDriverOK == 0 {
		t.Fatalf("status %#x", s)
	}
	if rd(0x100) != 5 {
		t.Errorf("num_pages %d", rd(0x100))
	}
	gen := rd(0x0fc)
	if err := dev.SetTarget(9); err != nil {
		t.Fatal(err)
	}
	if rd(0x100) != 9 || rd(0x0fc) == gen || rd(0x060)&mmio.IntConfigChange == 0 {
		t.Errorf("after SetTarget: num_pages %d, generation %d->%d, interrupt status %#x", rd(0x100), gen, rd(0x0fc), rd(0x060))
	}
	wr(0x064, mmio.IntConfigChange)

	touch(t, mem, dataGPA, 9*PageSize)
	b := drv[0].Alloc(36)
	for i, p := range pages(dataGPA, 9) {
		mem.PutUint32(b+uint64(4*i), p)
	}
	drv[0].AddChain(virtiotest.Buf{Addr: b, Len: 36})
	wr(0x050, 0)
	deadline := time.Now().Add(10 * time.Second)
	for drv[0].UsedIdx() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("inflate buffer never used")
		}
		time.Sleep(time.Millisecond)
	}
	wr(0x104, 9) // the driver's actual
	if dev.Actual() != 9 {
		t.Errorf("actual %d", dev.Actual())
	}
	if c := dev.Counters(); c.InflatedPages != 9 || c.DiscardedBytes != 9*PageSize {
		t.Errorf("counters %+v", c)
	}
	// A driver that starts over after a reset has an empty balloon.
	wr(0x070, 0)
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver)
	wr(0x024, 1)
	wr(0x020, 1)
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK)
	for i := range drv {
		drv[i] = virtiotest.NewDriver(t, mem, 16, 0x4000+uint64(i)*0x10000, 0x4000+uint64(i+1)*0x10000)
		cfg := drv[i].Config()
		wr(0x030, uint32(i))
		wr(0x038, uint32(cfg.Size))
		wr(0x080, uint32(cfg.DescTable))
		wr(0x090, uint32(cfg.AvailRing))
		wr(0x0a0, uint32(cfg.UsedRing))
		wr(0x044, 1)
	}
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK|virtio.StatusDriverOK)
	if dev.Actual() != 0 || rd(0x104) != 0 {
		t.Errorf("actual %d after the driver started over", dev.Actual())
	}
}

// mmioDriver programs a transport's registers as a driver does.
type mmioDriver struct {
	t   *testing.T
	tr  *mmio.Transport
	mem *guestmem.Memory
	drv []*virtiotest.Driver
}

func (m *mmioDriver) rd(off uint64) uint32 {
	var b [4]byte
	m.tr.Read(off, b[:])
	return binary.LittleEndian.Uint32(b[:])
}

func (m *mmioDriver) wr(off uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	m.tr.Write(off, b[:])
}

// start negotiates features (balloon bits plus VERSION_1) and sets up
// nq queues of 16 entries.
func (m *mmioDriver) start(features uint32, nq int) {
	mem := m.mem
	m.wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver)
	m.wr(0x024, 0)
	m.wr(0x020, features)
	m.wr(0x024, 1)
	m.wr(0x020, 1)
	m.wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK)
	m.drv = nil
	for i := range nq {
		d := virtiotest.NewDriver(m.t, mem, 16, 0x4000+uint64(i)*0x10000, 0x4000+uint64(i+1)*0x10000)
		cfg := d.Config()
		m.wr(0x030, uint32(i))
		m.wr(0x038, uint32(cfg.Size))
		m.wr(0x080, uint32(cfg.DescTable))
		m.wr(0x090, uint32(cfg.AvailRing))
		m.wr(0x0a0, uint32(cfg.UsedRing))
		m.wr(0x044, 1)
		m.drv = append(m.drv, d)
	}
	m.wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK|virtio.StatusDriverOK)
}

// TestSnapshotBehindMMIO quiesces a transport whose device holds the
// statistics buffer, saves it, and restores the state into a new
// transport and device: the restored device hands the buffer back.
func TestSnapshotBehindMMIO(t *testing.T) {
	mem := virtiotest.NewMemory(t, memSize)
	cfg := Config{StatsInterval: 300 * time.Millisecond}
	tr, err := mmio.New(New(cfg), mem, mmio.WithTrigger(&edges{}), mmio.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	m := &mmioDriver{t: t, tr: tr, mem: mem}
	m.start(FeatureStatsVQ, 3)
	stats := m.drv[2]
	buf := stats.Alloc(20)
	mem.WriteAt(statsBuffer(uint64(TagTotalMemory), 7, uint64(TagFreeMemory), 3), buf)
	stats.AddChain(virtiotest.Buf{Addr: buf, Len: 20})
	m.wr(0x050, 2)
	dev := tr.Device().(*Device)
	waitFor(t, "statistics", func() bool { return !dev.Stats().Updated.IsZero() })
	in := m.drv[0]
	pfns := in.Alloc(4)
	mem.PutUint32(pfns, dataGPA>>pageShift)
	in.AddChain(virtiotest.Buf{Addr: pfns, Len: 4})
	m.wr(0x050, 0)
	waitFor(t, "the inflate buffer", func() bool { return in.UsedIdx() == 1 })
	m.wr(0x104, 77)

	tr.Quiesce()
	st, err := tr.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	tr.Close()

	restored := New(cfg)
	tr2, err := mmio.New(restored, mem, mmio.WithTrigger(&edges{}), mmio.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	if err := tr2.RestoreState(st); err != nil {
		t.Fatal(err)
	}
	if restored.Actual() != 77 {
		t.Errorf("restored actual %d", restored.Actual())
	}
	if v, _ := restored.Stats().Get(TagTotalMemory); v != 7 {
		t.Errorf("restored statistics %+v", restored.Stats())
	}
	deadline := time.Now().Add(10 * time.Second)
	for stats.UsedIdx() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the restored device never handed the statistics buffer back")
		}
		time.Sleep(time.Millisecond)
	}
}
