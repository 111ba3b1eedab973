package balloon

import (
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// maxFuzzBuffer bounds each fuzzed buffer (the driver heaps are small).
const maxFuzzBuffer = 32 << 10

// FuzzBalloonQueues feeds arbitrary PFN arrays to the inflate and deflate
// queues, an arbitrary statistics buffer and arbitrary reported ranges to
// one device, over RAM with a hole in it, and serves them. Serving must
// not fail (the rings are sound), every host page the device drops must
// lie inside guest RAM, and the statistics must hold known tags only.
func FuzzBalloonQueues(f *testing.F) {
	le32 := func(v ...uint32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, x)
		}
		return b
	}
	report := func(pairs ...uint64) []byte {
		var b []byte
		for i := 0; i+1 < len(pairs); i += 2 {
			b = binary.LittleEndian.AppendUint64(b, pairs[i])
			b = binary.LittleEndian.AppendUint32(b, uint32(pairs[i+1]))
		}
		return b
	}
	f.Add(le32(512, 513, 514, 1), le32(512), statsBuffer(4, 1<<20, 5, 2<<20), report(2<<20, 1<<20), uint8(3))
	f.Add(le32(0xffffffff, 767, 768, 1023, 1024), le32(0, 0xfffff), statsBuffer(0xffff, 1, 15, 2), report(3<<20-4096, 8192, 1<<63, 4096), uint8(0))
	f.Add([]byte{1, 2, 3}, []byte{}, []byte{4, 0, 1}, []byte{}, uint8(255))
	f.Fuzz(func(t *testing.T, inflate, deflate, stats, reports []byte, split uint8) {
		if len(inflate) > maxFuzzBuffer || len(deflate) > maxFuzzBuffer || len(stats) > maxFuzzBuffer || len(reports) > maxFuzzBuffer {
			return
		}
		// RAM [0, 3 MiB) and [4 MiB, 6 MiB).
		mem, err := guestmem.New([]guestmem.RegionSpec{{GPA: 0, Size: 3 << 20}, {GPA: 4 << 20, Size: 2 << 20}}, guestmem.Backing{})
		if err != nil {
			t.Fatal(err)
		}
		defer mem.Close()
		r := newRig(t, Config{StatsInterval: time.Hour, FreePageReporting: true}, base|FeatureStatsVQ|FeatureReporting, mem)
		if err := r.dev.Activate(r.ctx()); err != nil {
			t.Fatal(err)
		}
		r.dev.mu.Lock()
		worker := r.dev.worker
		r.dev.mu.Unlock()
		worker.Stop()
		defer r.dev.Reset()
		a := &advice{t: t, p: r.dev.w.pager}
		r.dev.w.pager.madvise = a.madvise

		// Each PFN array is split over two descriptors at a fuzzed byte.
		for _, q := range []struct {
			role int
			data []byte
		}{{roleInflate, inflate}, {roleDeflate, deflate}} {
			b := r.buffer(q.role, q.data)
			cut := min(uint32(split), b.Len)
			first, second := b, b
			first.Len, second.Addr, second.Len = cut, b.Addr+uint64(cut), b.Len-cut
			r.drv[q.role].AddChain(first, second)
		}
		r.drv[roleStats].AddChain(r.buffer(roleStats, stats))
		var bufs []virtiotest.Buf
		for i := 0; i+12 <= len(reports) && len(bufs) < 16; i += 12 {
			bufs = append(bufs, virtiotest.Buf{
				Addr:  binary.LittleEndian.Uint64(reports[i:]),
				Len:   binary.LittleEndian.Uint32(reports[i+8:]),
				Write: true,
			})
		}
		if len(bufs) > 0 {
			r.drv[roleReport].AddChain(bufs...)
		}
		if _, err := r.dev.handle(0); err != nil {
			t.Fatalf("serving sound rings failed: %v", err)
		}
		for role := range numRoles {
			if role == roleStats {
				continue // the device keeps the statistics buffer
			}
			if r.drv[role].UsedIdx() == 0 && (role != roleReport || len(bufs) > 0) {
				t.Errorf("%s buffer not returned", roleNames[role])
			}
		}
		s := r.dev.Stats()
		if s.Present>>NumTags != 0 || s.Updated.IsZero() {
			t.Errorf("statistics %+v", s)
		}
		c := r.dev.Counters()
		if c.InflatedPages+c.InvalidPages < uint64(len(inflate)/4) && len(inflate)/4 <= maxPFNsPerBuffer {
			t.Errorf("counters %+v for %d inflated PFNs", c, len(inflate)/4)
		}
	})
}

// FuzzBalloonRestore restores arbitrary saved states (a snapshot file is
// outside input) and activates the device on sound queues: a bad state is
// refused or ignored, never a panic, and the device serves afterwards.
func FuzzBalloonRestore(f *testing.F) {
	good, _ := json.Marshal(State{Config: Config{StatsInterval: time.Second}, Target: 5, Actual: 3, StatsHeld: true, StatsHead: 1})
	f.Add(good)
	f.Add([]byte(`{"Config":{"StatsInterval":1000000000},"StatsHeld":true,"StatsHead":65535,"Ballooned":[[1,2,3],[]],"Stats":{"Present":4294967295}}`))
	f.Add([]byte(`{"Config":{"StatsInterval":-5}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		cfg := Config{StatsInterval: time.Second}
		r := newRig(t, cfg, base|FeatureStatsVQ, nil)
		if err := r.dev.RestoreState(data); err != nil {
			return
		}
		if err := r.dev.Activate(r.ctx()); err != nil {
			t.Fatalf("Activate after a restore: %v", err)
		}
		defer r.dev.Reset()
		r.dev.Stats().Each(func(Tag, uint64) {})
		r.drv[roleInflate].AddChain(r.pfnBuffer(roleInflate, pages(dataGPA, 4)...))
		r.kick()
		r.used(t, roleInflate)
	})
}
