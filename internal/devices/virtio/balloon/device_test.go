package balloon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

const base = virtio.FeatureVersion1 | virtio.FeatureEventIdx

func TestFeaturesAndQueues(t *testing.T) {
	d := New(Config{})
	if d.Type() != virtio.IDBalloon || d.Features() != ringFeatures || len(d.QueueMaxSizes()) != 2 {
		t.Errorf("plain balloon: type %v features %#x queues %v", d.Type(), d.Features(), d.QueueMaxSizes())
	}
	d = New(Config{DeflateOnOOM: true, StatsInterval: time.Second, FreePageReporting: true})
	want := uint64(ringFeatures | FeatureStatsVQ | FeatureDeflateOnOOM | FeatureReporting)
	if d.Features() != want || len(d.QueueMaxSizes()) != 4 {
		t.Errorf("full balloon: features %#x (want %#x), queues %v", d.Features(), want, d.QueueMaxSizes())
	}
	if d.Features()&(FeatureFreePageHint|FeatureMustTellHost|FeaturePagePoison) != 0 {
		t.Error("offers a feature it does not implement")
	}
	if d.Features()&^virtio.OfferableFeatures != 0 {
		t.Errorf("features %#x outside what a transport may offer", d.Features())
	}
}

func readConfig(d *Device, off uint64, n int) []byte {
	b := bytes.Repeat([]byte{0xee}, n)
	d.ReadConfig(off, b)
	return b
}

func TestConfigSpace(t *testing.T) {
	d := New(Config{TargetPages: 0x01020304})
	if got := binary.LittleEndian.Uint32(readConfig(d, 0, 4)); got != 0x01020304 {
		t.Errorf("num_pages = %#x", got)
	}
	if got := readConfig(d, 2, 4); !bytes.Equal(got, []byte{2, 1, 0, 0}) {
		t.Errorf("unaligned read = %x", got)
	}
	if got := readConfig(d, 8, 16); !bytes.Equal(got, make([]byte, 16)) {
		t.Errorf("hint, poison and beyond = %x", got)
	}
	if got := readConfig(d, 1<<62, 4); !bytes.Equal(got, make([]byte, 4)) {
		t.Errorf("far read = %x", got)
	}
	// The driver writes actual; num_pages is read-only.
	d.WriteConfig(0, []byte{9, 9, 9, 9, 0x10, 0, 0, 0})
	if d.Target() != 0x01020304 || d.Actual() != 0x10 {
		t.Errorf("after write: target %#x actual %#x", d.Target(), d.Actual())
	}
	select {
	case <-d.Changes():
	default:
		t.Error("no change signalled for actual")
	}
	d.WriteConfig(offActual, []byte{0x10, 0, 0, 0})
	select {
	case <-d.Changes():
		t.Error("change signalled for an unchanged actual")
	default:
	}
	d.WriteConfig(offActual+1, []byte{1}) // a one-byte write to actual's second byte
	if d.Actual() != 0x110 {
		t.Errorf("actual after byte write = %#x", d.Actual())
	}
	for _, w := range []struct {
		off uint64
		n   int
	}{{14, 4}, {16, 1}, {1 << 63, 4}, {^uint64(0), 8}} {
		d.WriteConfig(w.off, make([]byte, w.n))
	}
	if d.Actual() != 0x110 {
		t.Errorf("writes outside the space changed actual to %#x", d.Actual())
	}
}

func TestInflateReturnsPagesToHost(t *testing.T) {
	r := startRig(t, Config{}, base)
	const n = 256
	touch(t, r.mem, dataGPA, n*PageSize)
	before := resident(t, r.mem)
	// Two buffers: one contiguous run, and a scattered list with a
	// duplicate. The driver's buffer is split over two descriptors with a
	// PFN straddling them.
	r.drv[roleInflate].AddChain(r.pfnBuffer(roleInflate, pages(dataGPA, n/2)...))
	raw := make([]byte, 0, 4*n/2)
	for _, p := range pages(dataGPA+n/2*PageSize, n/2) {
		raw = binary.LittleEndian.AppendUint32(raw, p)
	}
	a, b := r.buffer(roleInflate, raw[:6]), r.buffer(roleInflate, raw[6:])
	r.drv[roleInflate].AddChain(a, b)
	r.kick()
	r.used(t, roleInflate)
	if id, n := r.used(t, roleInflate); id == 0 || n != 0 {
		t.Errorf("second inflate buffer returned as %d/%d", id, n)
	}
	after := resident(t, r.mem)
	if before-after != n*PageSize {
		t.Errorf("resident memory fell by %d bytes, want %d", before-after, n*PageSize)
	}
	if got := virtiotest.Bytes(t, r.mem, dataGPA+100*PageSize, 16); !bytes.Equal(got, make([]byte, 16)) {
		t.Errorf("an inflated page still holds %x", got)
	}
	c := r.dev.Counters()
	if c.InflatedPages != n || c.DiscardedBytes != n*PageSize || c.InvalidPages != 0 {
		t.Errorf("counters %+v", c)
	}
	if r.rec.Interrupts.Load() == 0 {
		t.Error("no used-buffer interrupt")
	}

	// Deflate: the buffer comes back, the pages are usable again.
	r.drv[roleDeflate].AddChain(r.pfnBuffer(roleDeflate, pages(dataGPA, 8)...))
	r.kick()
	r.used(t, roleDeflate)
	touch(t, r.mem, dataGPA, 8*PageSize)
	if c := r.dev.Counters(); c.DeflatedPages != 8 {
		t.Errorf("deflated %d pages", c.DeflatedPages)
	}
	if err := r.rec.Failure(); err != nil {
		t.Errorf("device failed: %v", err)
	}
}

// TestSharedMemoryIsRemoved: with memfd-backed RAM the pages leave the
// memfd too (MADV_REMOVE), not only the mapping.
func TestSharedMemoryIsRemoved(t *testing.T) {
	mem, err := guestmem.New([]guestmem.RegionSpec{{GPA: 0, Size: memSize}}, guestmem.Backing{Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	r := newRig(t, Config{}, base, mem)
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	defer r.dev.Reset()
	touch(t, mem, dataGPA, 64*PageSize)
	r.drv[roleInflate].AddChain(r.pfnBuffer(roleInflate, pages(dataGPA, 64)...))
	r.kick()
	r.used(t, roleInflate)
	var st [1]byte
	// Reading through the memfd itself: the hole reads as zeros.
	f := mem.Regions()[0].File
	if _, err := f.ReadAt(st[:], dataGPA+5*PageSize); err != nil || st[0] != 0 {
		t.Errorf("memfd still holds %x after inflation (%v)", st, err)
	}
	if c := r.dev.Counters(); c.DiscardedBytes != 64*PageSize {
		t.Errorf("discarded %d bytes", c.DiscardedBytes)
	}
}

func TestHostilePFNs(t *testing.T) {
	// RAM with a hole: [0, 12 MiB) and [16 MiB, 20 MiB).
	mem, err := guestmem.New([]guestmem.RegionSpec{{GPA: 0, Size: 12 << 20}, {GPA: 16 << 20, Size: 4 << 20}}, guestmem.Backing{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	r := newRig(t, Config{}, base, mem)
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	defer r.dev.Reset()
	touch(t, mem, dataGPA, 4*PageSize)
	touch(t, mem, 16<<20, 4*PageSize)
	before := resident(t, mem)
	hostile := []uint32{
		(12 << 20) >> pageShift, // the hole
		(14 << 20) >> pageShift,
		(20 << 20) >> pageShift, // just past RAM
		0xffffffff,
		uint32(dataGPA >> pageShift), // valid
		(16 << 20) >> pageShift,      // valid, second region
		((16 << 20) >> pageShift) - 1,
	}
	r.drv[roleInflate].AddChain(r.pfnBuffer(roleInflate, hostile...))
	// A buffer of 6 bytes: one PFN and a stray half.
	b := r.pfnBuffer(roleInflate, uint32(dataGPA>>pageShift)+1, 0x1234)
	b.Len = 6
	r.drv[roleInflate].AddChain(b)
	// An empty buffer and a device-writable one carry no PFNs.
	r.drv[roleInflate].AddChain(virtiotest.Buf{Addr: b.Addr, Len: 0})
	r.drv[roleInflate].AddChain(virtiotest.Buf{Addr: b.Addr, Len: 8, Write: true})
	// A loop in the descriptor table: a malformed request, returned unused.
	d := r.drv[roleInflate]
	d.SetDesc(d.Desc, 40, b.Addr, 4, virtio.DescFlagNext, 40)
	d.Publish(40)
	r.kick()
	for range 5 {
		r.used(t, roleInflate)
	}
	c := r.dev.Counters()
	if c.InflatedPages != 3 || c.InvalidPages != 5 {
		t.Errorf("counters %+v: want 3 pages inflated, 5 invalid", c)
	}
	if fell := before - resident(t, mem); fell != 3*PageSize {
		t.Errorf("resident memory fell by %d, want %d", fell, 3*PageSize)
	}
	// Deflating nonsense is ignored the same way.
	r.drv[roleDeflate].AddChain(r.pfnBuffer(roleDeflate, 0xffffffff, (13<<20)>>pageShift))
	r.kick()
	r.used(t, roleDeflate)
	if c := r.dev.Counters(); c.InvalidPages != 7 || c.DeflatedPages != 0 {
		t.Errorf("after deflating nonsense: %+v", c)
	}
	if err := r.rec.Failure(); err != nil {
		t.Errorf("device failed: %v", err)
	}
}

// TestHugeBuffer: one buffer naming far more pages than Linux ever sends
// is honoured for its first maxPFNsPerBuffer PFNs.
func TestHugeBuffer(t *testing.T) {
	mem := virtiotest.NewMemory(t, 64<<20)
	r := newRig(t, Config{}, base, mem)
	d := r.drv[roleInflate]
	// Outside the driver's heap: 512 KiB of PFNs at 32 MiB, every one
	// pointing at page 8 MiB + i%64.
	const n = 2 * maxPFNsPerBuffer
	raw := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(dataGPA>>pageShift)+uint32(i%64))
	}
	if err := mem.WriteAt(raw, 32<<20); err != nil {
		t.Fatal(err)
	}
	d.AddChain(virtiotest.Buf{Addr: 32 << 20, Len: 4 * n})
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	defer r.dev.Reset()
	r.used(t, roleInflate)
	if c := r.dev.Counters(); c.InflatedPages != maxPFNsPerBuffer {
		t.Errorf("inflated %d pages from one buffer, want the %d cap", c.InflatedPages, maxPFNsPerBuffer)
	}
}

func TestStatistics(t *testing.T) {
	r := startRig(t, Config{StatsInterval: 50 * time.Millisecond}, base|FeatureStatsVQ)
	if s := r.dev.Stats(); !s.Updated.IsZero() {
		t.Fatalf("stats before any report: %+v", s)
	}
	d := r.drv[roleStats]
	d.SetUsedEvent(0)
	first := statsBuffer(uint64(TagFreeMemory), 100<<20, uint64(TagTotalMemory), 256<<20, 99, 7, uint64(TagMinorFaults), 5)
	d.AddChain(r.buffer(roleStats, first))
	r.kick()
	waitFor(t, "the first report", func() bool { return !r.dev.Stats().Updated.IsZero() })
	s := r.dev.Stats()
	if v, ok := s.Get(TagFreeMemory); !ok || v != 100<<20 {
		t.Errorf("free memory %d, %v", v, ok)
	}
	if v, ok := s.Get(TagTotalMemory); !ok || v != 256<<20 {
		t.Errorf("total memory %d, %v", v, ok)
	}
	if _, ok := s.Get(TagSwapIn); ok {
		t.Error("swap_in reported though the guest did not send it")
	}
	if _, ok := s.Get(99); ok {
		t.Error("unknown tag kept")
	}
	var names []string
	s.Each(func(tag Tag, v uint64) { names = append(names, tag.String()) })
	if got := names; len(got) != 3 || got[0] != "minor_faults" || got[1] != "free_memory" || got[2] != "total_memory" {
		t.Errorf("Each visited %v", got)
	}
	// The device keeps the buffer until the interval has passed, then
	// hands it back to ask for fresh values.
	start := time.Now()
	id, n := r.used(t, roleStats)
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("stats buffer returned after %v", waited)
	}
	if id != 0 || n != 0 {
		t.Errorf("stats buffer returned as %d/%d", id, n)
	}
	d.AddChain(r.buffer(roleStats, statsBuffer(uint64(TagFreeMemory), 50<<20)))
	r.kick()
	waitFor(t, "the second report", func() bool {
		v, _ := r.dev.Stats().Get(TagFreeMemory)
		return v == 50<<20
	})
	if _, ok := r.dev.Stats().Get(TagTotalMemory); ok {
		t.Error("a report replaces the previous one, total_memory should be gone")
	}
	if c := r.dev.Counters(); c.StatsUpdates != 2 {
		t.Errorf("%d statistics updates", c.StatsUpdates)
	}
}

func TestStatsIntervalControl(t *testing.T) {
	if err := New(Config{}).SetStatsInterval(time.Second); !errors.Is(err, ErrStatsDisabled) {
		t.Errorf("interval on a device without statistics: %v", err)
	}
	d := New(Config{StatsInterval: time.Second})
	for _, bad := range []time.Duration{0, -time.Second, time.Millisecond, MaxStatsInterval + time.Second} {
		if err := d.SetStatsInterval(bad); !errors.Is(err, ErrStatsInterval) {
			t.Errorf("SetStatsInterval(%v) = %v", bad, err)
		}
	}
	if err := d.SetStatsInterval(3 * time.Second); err != nil || d.StatsInterval() != 3*time.Second {
		t.Errorf("SetStatsInterval(3s) = %v, interval %v", err, d.StatsInterval())
	}
	if d := New(Config{StatsInterval: 100 * time.Hour}); d.StatsInterval() != MaxStatsInterval {
		t.Errorf("an over-long configured interval became %v", d.StatsInterval())
	}
}

// TestStatsIntervalChangeWakesWorker: shortening the interval while the
// device holds the buffer brings the request forward.
func TestStatsIntervalChangeWakesWorker(t *testing.T) {
	r := startRig(t, Config{StatsInterval: time.Hour}, base|FeatureStatsVQ)
	r.drv[roleStats].AddChain(r.buffer(roleStats, statsBuffer(uint64(TagFreeMemory), 1)))
	r.kick()
	waitFor(t, "the first report", func() bool { return !r.dev.Stats().Updated.IsZero() })
	if err := r.dev.SetStatsInterval(time.Second); err != nil {
		t.Fatal(err)
	}
	r.used(t, roleStats)
}

func TestFreePageReporting(t *testing.T) {
	r := startRig(t, Config{FreePageReporting: true}, base|FeatureReporting)
	touch(t, r.mem, dataGPA, 4<<20)
	before := resident(t, r.mem)
	d := r.drv[roleReport]
	// Two aligned 1 MiB ranges in one chain, and one unaligned range of
	// which only the whole pages inside go.
	d.AddChain(virtiotest.Buf{Addr: dataGPA, Len: 1 << 20, Write: true}, virtiotest.Buf{Addr: dataGPA + 1<<20, Len: 1 << 20, Write: true})
	d.AddChain(virtiotest.Buf{Addr: dataGPA + 2<<20 + 100, Len: 3 * PageSize, Write: true})
	r.kick()
	r.used(t, roleReport)
	r.used(t, roleReport)
	if fell := before - resident(t, r.mem); fell != 2<<20+2*PageSize {
		t.Errorf("resident memory fell by %d, want %d", fell, 2<<20+2*PageSize)
	}
	// The page partly covered at the start keeps its contents.
	if got := virtiotest.Bytes(t, r.mem, dataGPA+2<<20, 4); !bytes.Equal(got, []byte{0xa5, 0xa5, 0xa5, 0xa5}) {
		t.Errorf("partly reported page lost its contents: %x", got)
	}
	if c := r.dev.Counters(); c.ReportedBytes != 2<<20+2*PageSize || c.DiscardedBytes != 0 {
		t.Errorf("counters %+v", c)
	}
	// A range outside RAM is a malformed chain: returned, nothing discarded.
	d.AddChain(virtiotest.Buf{Addr: memSize - PageSize, Len: 2 * PageSize, Write: true})
	r.kick()
	r.used(t, roleReport)
	if err := r.rec.Failure(); err != nil {
		t.Errorf("device failed: %v", err)
	}
}

func TestSetTarget(t *testing.T) {
	r := newRig(t, Config{TargetPages: 10}, base, nil)
	if err := r.dev.SetTarget(20); err != nil || r.rec.Configs.Load() != 0 {
		t.Fatalf("SetTarget before activation: %v, %d interrupts", err, r.rec.Configs.Load())
	}
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	defer r.dev.Reset()
	if err := r.dev.SetTarget(30); err != nil || r.rec.Configs.Load() != 1 {
		t.Fatalf("SetTarget while active: %v, %d interrupts", err, r.rec.Configs.Load())
	}
	if got := binary.LittleEndian.Uint32(readConfig(r.dev, 0, 4)); got != 30 || r.dev.Target() != 30 {
		t.Errorf("num_pages %d", got)
	}
}

func TestLifecycle(t *testing.T) {
	r := startRig(t, Config{}, base)
	if err := r.dev.Activate(r.ctx()); !errors.Is(err, virtio.ErrAlreadyActive) {
		t.Errorf("second Activate = %v", err)
	}
	r.dev.Reset()
	r.dev.Reset()
	ctx := r.ctx()
	unready, _ := virtio.NewQueue(QueueSize)
	ctx.Queues = []*virtio.Queue{r.queues[0], unready}
	if err := r.dev.Activate(ctx); !errors.Is(err, virtio.ErrMissingQueue) {
		t.Errorf("Activate without the deflate queue = %v", err)
	}
	ctx = r.ctx()
	ctx.Features |= FeatureStatsVQ // negotiated, but the transport has two queues
	if err := r.dev.Activate(ctx); !errors.Is(err, virtio.ErrMissingQueue) {
		t.Errorf("Activate with too few queues = %v", err)
	}
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Errorf("Activate after Reset: %v", err)
	}
}

func TestBrokenQueueNeedsReset(t *testing.T) {
	r := startRig(t, Config{}, base)
	r.drv[roleDeflate].SetAvailIdx(1000)
	r.kick()
	waitFor(t, "a reset request", func() bool { return r.rec.Failure() != nil })
	if err := r.rec.Failure(); !errors.Is(err, virtio.ErrAvailIndex) {
		t.Errorf("failure %v, want ErrAvailIndex", err)
	}
	if c := r.dev.Counters(); c.Failures != 1 {
		t.Errorf("failures %d", c.Failures)
	}
}

func TestParseConfig(t *testing.T) {
	for _, c := range []struct {
		in    string
		want  *Config
		isErr bool
	}{
		{"", &Config{}, false},
		{"on", &Config{}, false},
		{"off", nil, false},
		{"deflate-on-oom=on", &Config{DeflateOnOOM: true}, false},
		{"stats=5", &Config{StatsInterval: 5 * time.Second}, false},
		{"stats=5s,free-page-reporting=on,deflate-on-oom=off", &Config{StatsInterval: 5 * time.Second, FreePageReporting: true}, false},
		{"stats=0", &Config{}, false},
		{"stats=65536", nil, true},
		{"stats=-1", nil, true},
		{"stats=soon", nil, true},
		{"deflate-on-oom=maybe", nil, true},
		{"size=1G", nil, true},
		{"deflate-on-oom", nil, true},
	} {
		got, err := ParseConfig(c.in)
		if c.isErr {
			if !errors.Is(err, ErrConfig) {
				t.Errorf("ParseConfig(%q) = %+v, %v; want ErrConfig", c.in, got, err)
			}
			continue
		}
		if err != nil || (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("ParseConfig(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// TestServeAllocs: serving inflate, deflate, statistics and reports
// allocates nothing.
func TestServeAllocs(t *testing.T) {
	r := newRig(t, Config{StatsInterval: time.Hour, FreePageReporting: true}, base|FeatureStatsVQ|FeatureReporting, nil)
	// Activate only to build the worker state; stop the worker and drive
	// the handler directly.
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	r.dev.mu.Lock()
	worker := r.dev.worker
	r.dev.mu.Unlock()
	worker.Stop()
	defer r.dev.Reset()
	inflate := r.pfnBuffer(roleInflate, pages(dataGPA, 256)...)
	deflate := r.pfnBuffer(roleDeflate, pages(dataGPA, 256)...)
	stats := r.buffer(roleStats, statsBuffer(uint64(TagFreeMemory), 1, uint64(TagTotalMemory), 2))
	allocs := testing.AllocsPerRun(200, func() {
		r.drv[roleInflate].AddChain(inflate)
		r.drv[roleDeflate].AddChain(deflate)
		r.drv[roleStats].AddChain(stats)
		r.drv[roleReport].AddChain(virtiotest.Buf{Addr: dataGPA, Len: 1 << 20, Write: true}, virtiotest.Buf{Addr: dataGPA + 2<<20, Len: 1 << 20, Write: true})
		if _, err := r.dev.handle(0); err != nil {
			t.Fatal(err)
		}
		for role := range numRoles {
			for {
				if _, _, ok := r.drv[role].NextUsed(); !ok {
					break
				}
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round, want 0", allocs)
	}
}

// TestWorkBudget: one handler call serves at most workBudget pages, then
// asks to be called again at once, so the worker can notice a stop.
func TestWorkBudget(t *testing.T) {
	mem := virtiotest.NewMemory(t, 64<<20)
	r := newRig(t, Config{}, base, mem)
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	r.dev.mu.Lock()
	worker := r.dev.worker
	r.dev.mu.Unlock()
	worker.Stop()
	defer r.dev.Reset()
	raw := make([]byte, 4*maxPFNsPerBuffer)
	for i := range maxPFNsPerBuffer {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(dataGPA>>pageShift)+uint32(i%16))
	}
	if err := mem.WriteAt(raw, 32<<20); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r.drv[roleInflate].AddChain(virtiotest.Buf{Addr: 32 << 20, Len: uint32(len(raw))})
	}
	if wait, err := r.dev.handle(0); err != nil || wait != again {
		t.Fatalf("first call: %v, %v; want to be called again", wait, err)
	}
	if n := r.drv[roleInflate].UsedIdx(); n != 2 {
		t.Errorf("%d buffers served in the first call, want 2", n)
	}
	if wait, err := r.dev.handle(virtio.TimerEvent); err != nil || wait != 0 {
		t.Fatalf("second call: %v, %v", wait, err)
	}
	if n := r.drv[roleInflate].UsedIdx(); n != 3 {
		t.Errorf("%d buffers served in all, want 3", n)
	}
}

// TestChangePacing: a burst of changes of actual is signalled at once,
// then once more at the end of ChangeInterval, not once per change.
func TestChangePacing(t *testing.T) {
	d := New(Config{})
	set := func(v byte) { d.WriteConfig(offActual, []byte{v, 0, 0, 0}) }
	set(1)
	select {
	case <-d.Changes():
	default:
		t.Fatal("the first change was not signalled at once")
	}
	start := time.Now()
	for v := range byte(20) {
		set(v + 2)
	}
	select {
	case <-d.Changes():
		t.Fatal("a change inside the interval was signalled at once")
	default:
	}
	select {
	case <-d.Changes():
		if waited := time.Since(start); waited < ChangeInterval/2 {
			t.Errorf("trailing signal after %v", waited)
		}
	case <-time.After(5 * ChangeInterval):
		t.Fatal("the last change of the burst was never signalled")
	}
	if d.Actual() != 21 {
		t.Errorf("actual %d", d.Actual())
	}
	select {
	case <-d.Changes():
		t.Error("more than one trailing signal")
	case <-time.After(ChangeInterval + 200*time.Millisecond):
	}
}
