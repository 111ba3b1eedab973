package balloon

import (
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

const (
	memSize   = 16 << 20
	ringSpace = 0x40000 // per queue: rings and buffers
	// dataGPA is where tests put pages they inflate or report.
	dataGPA = 8 << 20
)

// recorder is the transport side of an activation.
type recorder = virtiotest.Recorder

// rig is a device with one fake driver per negotiated queue.
type rig struct {
	mem      *guestmem.Memory
	features uint64
	drv      [numRoles]*virtiotest.Driver
	queues   []*virtio.Queue
	notify   []*hostos.EventFD
	rec      *recorder
	dev      *Device
}

// newRig builds queues for the negotiated features over mem (nil: a
// fresh private memory of memSize) without activating the device.
func newRig(t testing.TB, cfg Config, features uint64, mem *guestmem.Memory) *rig {
	t.Helper()
	if mem == nil {
		mem = virtiotest.NewMemory(t, memSize)
	}
	r := &rig{mem: mem, features: features, rec: &recorder{}, dev: New(cfg)}
	base := uint64(0x1000)
	// Fault the ring area in now, so that residency measurements see only
	// the pages a test inflates or reports.
	if err := mem.Zero(base, numRoles*ringSpace); err != nil {
		t.Fatal(err)
	}
	for role := range numRoles {
		if role == roleStats && features&FeatureStatsVQ == 0 || role == roleReport && features&FeatureReporting == 0 {
			continue
		}
		drv := virtiotest.NewDriver(t, mem, 64, base, base+ringSpace)
		base += ringSpace
		q, err := virtio.NewQueue(QueueSize)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Configure(mem, drv.Config(), features); err != nil {
			t.Fatal(err)
		}
		ev, err := hostos.NewEventFD()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ev.Close() })
		r.drv[role] = drv
		r.queues = append(r.queues, q)
		r.notify = append(r.notify, ev)
	}
	return r
}

// startRig builds and activates.
func startRig(t testing.TB, cfg Config, features uint64) *rig {
	t.Helper()
	r := newRig(t, cfg, features, nil)
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.dev.Reset)
	return r
}

func (r *rig) ctx() virtio.ActivateContext {
	return virtio.ActivateContext{
		Mem: r.mem, Features: r.features, Queues: r.queues, Notify: r.notify,
		Interrupt: r.rec, NeedsReset: r.rec.NeedsReset, Log: slog.New(slog.DiscardHandler),
	}
}

// kick notifies every queue.
func (r *rig) kick() {
	for _, e := range r.notify {
		e.Signal()
	}
}

// used waits for the next used element of a queue.
func (r *rig) used(t testing.TB, role int) (uint32, uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if id, n, ok := r.drv[role].NextUsed(); ok {
			return id, n
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("timed out waiting for a used buffer on the %s queue", roleNames[role])
	return 0, 0
}

// pfnBuffer writes PFNs into a new buffer of the role's driver.
func (r *rig) pfnBuffer(role int, pfns ...uint32) virtiotest.Buf {
	b := make([]byte, 4*len(pfns))
	for i, p := range pfns {
		binary.LittleEndian.PutUint32(b[4*i:], p)
	}
	return r.buffer(role, b)
}

// buffer copies b into a new device-readable buffer of the role's driver.
func (r *rig) buffer(role int, b []byte) virtiotest.Buf {
	a := r.drv[role].Alloc(uint64(max(len(b), 1)))
	if err := r.mem.WriteAt(b, a); err != nil {
		panic(err)
	}
	return virtiotest.Buf{Addr: a, Len: uint32(len(b))}
}

// pages returns n consecutive PFNs from gpa.
func pages(gpa uint64, n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(gpa>>pageShift) + uint32(i)
	}
	return out
}

// touch makes [gpa, gpa+n) resident with a non-zero pattern.
func touch(t testing.TB, mem *guestmem.Memory, gpa, n uint64) {
	t.Helper()
	s, err := mem.Slice(gpa, n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s {
		s[i] = 0xa5
	}
}

func resident(t testing.TB, mem *guestmem.Memory) uint64 {
	t.Helper()
	n, err := mem.Resident()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// statsBuffer encodes tag/value pairs as struct virtio_balloon_stat.
func statsBuffer(pairs ...uint64) []byte {
	b := make([]byte, 0, statSize*len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		b = binary.LittleEndian.AppendUint16(b, uint16(pairs[i]))
		b = binary.LittleEndian.AppendUint64(b, pairs[i+1])
	}
	return b
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
