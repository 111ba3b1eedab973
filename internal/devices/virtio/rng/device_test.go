package rng

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

const memSize = 1 << 20

// pattern is an entropy source that yields 0, 1, 2, ... (mod 256).
type pattern struct{ n byte }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = p.n
		p.n++
	}
	return len(b), nil
}

// failing is an entropy source that fails or panics.
type failing struct{ panics bool }

func (f failing) Read([]byte) (int, error) {
	if f.panics {
		panic("source exploded")
	}
	return 0, errors.New("no entropy")
}

// recorder is the transport side of an activation.
type recorder = virtiotest.Recorder

type rig struct {
	mem    *guestmem.Memory
	drv    *virtiotest.Driver
	q      *virtio.Queue
	notify *hostos.EventFD
	rec    *recorder
	dev    *Device
}

// newRig activates a device on a queue of size n laid out by a fake driver.
func newRig(t *testing.T, cfg Config, n uint16, features uint64) *rig {
	t.Helper()
	mem := virtiotest.NewMemory(t, memSize)
	drv := virtiotest.NewDriver(t, mem, n, 0x1000, memSize)
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
	r := &rig{mem: mem, drv: drv, q: q, notify: ev, rec: &recorder{}, dev: New(cfg)}
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.dev.Reset()
		ev.Close()
	})
	return r
}

func (r *rig) ctx() virtio.ActivateContext {
	return virtio.ActivateContext{
		Mem: r.mem, Features: features, Queues: []*virtio.Queue{r.q},
		Notify: []*hostos.EventFD{r.notify}, Interrupt: r.rec, NeedsReset: r.rec.NeedsReset,
		Log: slog.New(slog.DiscardHandler),
	}
}

// used waits for the next used element.
func (r *rig) used(t *testing.T) (uint32, uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if id, n, ok := r.drv.NextUsed(); ok {
			return id, n
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("timed out waiting for a used buffer")
	return 0, 0
}

func TestFillsBuffers(t *testing.T) {
	r := newRig(t, Config{Source: &pattern{}}, 16, features)
	a, b, c := r.drv.Alloc(64), r.drv.Alloc(8), r.drv.Alloc(8)
	r.drv.AddChain(virtiotest.Buf{Addr: a, Len: 64, Write: true})
	// A readable descriptor in front is ignored; two writable ones are filled in order.
	in := r.drv.Alloc(4)
	head := r.drv.AddChain(virtiotest.Buf{Addr: in, Len: 4}, virtiotest.Buf{Addr: b, Len: 8, Write: true}, virtiotest.Buf{Addr: c, Len: 8, Write: true})
	r.notify.Signal()
	if id, n := r.used(t); id != 0 || n != 64 {
		t.Fatalf("first used element %d/%d", id, n)
	}
	if id, n := r.used(t); id != uint32(head) || n != 16 {
		t.Fatalf("second used element %d/%d", id, n)
	}
	want := make([]byte, 80)
	(&pattern{}).Read(want)
	if got := virtiotest.Bytes(t, r.mem, a, 64); !bytes.Equal(got, want[:64]) {
		t.Errorf("first buffer %x", got)
	}
	if got := virtiotest.Bytes(t, r.mem, b, 8); !bytes.Equal(got, want[64:72]) {
		t.Errorf("second chain, first buffer %x", got)
	}
	if got := virtiotest.Bytes(t, r.mem, c, 8); !bytes.Equal(got, want[72:80]) {
		t.Errorf("second chain, second buffer %x", got)
	}
	if got := virtiotest.Bytes(t, r.mem, in, 4); !bytes.Equal(got, make([]byte, 4)) {
		t.Errorf("device-readable buffer was written: %x", got)
	}
	if r.rec.Interrupts.Load() == 0 {
		t.Error("no interrupt")
	}
}

func TestIndirectAndHugeBuffers(t *testing.T) {
	r := newRig(t, Config{}, 8, features)
	big := r.drv.Alloc(128 << 10)
	small := r.drv.Alloc(32)
	r.drv.Publish(r.drv.WriteIndirect(r.drv.Alloc(32), virtiotest.Buf{Addr: small, Len: 32, Write: true}))
	r.drv.AddChain(virtiotest.Buf{Addr: big, Len: 128 << 10, Write: true})
	r.notify.Signal()
	if _, n := r.used(t); n != 32 {
		t.Errorf("indirect buffer: %d bytes", n)
	}
	if _, n := r.used(t); n != maxPerRequest {
		t.Errorf("huge buffer: %d bytes, want the %d cap", n, maxPerRequest)
	}
	if bytes.Equal(virtiotest.Bytes(t, r.mem, small, 32), make([]byte, 32)) {
		t.Error("crypto/rand gave 32 zero bytes")
	}
}

func TestMalformedRequestIsDropped(t *testing.T) {
	r := newRig(t, Config{}, 8, features)
	r.drv.SetDesc(r.drv.Desc, 0, r.drv.Alloc(8), 8, virtio.DescFlagNext|virtio.DescFlagWrite, 0) // loop
	r.drv.Publish(0)
	b := r.drv.Alloc(16)
	r.drv.SetDesc(r.drv.Desc, 1, b, 16, virtio.DescFlagWrite, 0)
	r.drv.Publish(1)
	r.notify.Signal()
	if id, n := r.used(t); id != 0 || n != 0 {
		t.Errorf("malformed request returned as %d/%d, want 0/0", id, n)
	}
	if id, n := r.used(t); id != 1 || n != 16 {
		t.Errorf("good request after it: %d/%d", id, n)
	}
	if err := r.rec.Failure(); err != nil {
		t.Errorf("device marked broken: %v", err)
	}
}

func waitFailure(t *testing.T, r *rig) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := r.rec.Failure(); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("device never asked for a reset")
	return nil
}

func TestBrokenQueueNeedsReset(t *testing.T) {
	r := newRig(t, Config{}, 8, features)
	r.drv.SetAvailIdx(100)
	r.notify.Signal()
	if err := waitFailure(t, r); !errors.Is(err, virtio.ErrAvailIndex) {
		t.Errorf("failure %v, want ErrAvailIndex", err)
	}
	r.dev.Reset()
	r.dev.Reset()
}

func TestSourceFailureNeedsReset(t *testing.T) {
	for _, panics := range []bool{false, true} {
		r := newRig(t, Config{Source: failing{panics: panics}}, 8, features)
		r.drv.AddChain(virtiotest.Buf{Addr: r.drv.Alloc(8), Len: 8, Write: true})
		r.notify.Signal()
		err := waitFailure(t, r)
		if panics != errors.Is(err, virtio.ErrDevicePanic) {
			t.Errorf("panics=%v: failure %v", panics, err)
		}
	}
}

func TestActivateChecks(t *testing.T) {
	r := newRig(t, Config{}, 8, features)
	if err := r.dev.Activate(r.ctx()); !errors.Is(err, virtio.ErrAlreadyActive) {
		t.Errorf("second Activate = %v", err)
	}
	r.dev.Reset()
	ctx := r.ctx()
	unready, _ := virtio.NewQueue(QueueSize)
	ctx.Queues = []*virtio.Queue{unready}
	if err := r.dev.Activate(ctx); !errors.Is(err, virtio.ErrMissingQueue) {
		t.Errorf("Activate without a ready queue = %v", err)
	}
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Errorf("Activate after Reset: %v", err)
	}
}

// TestRateLimit drives serve directly with a fake clock.
func TestRateLimit(t *testing.T) {
	mem := virtiotest.NewMemory(t, memSize)
	drv := virtiotest.NewDriver(t, mem, 8, 0x1000, memSize)
	q, _ := virtio.NewQueue(QueueSize)
	if err := q.Configure(mem, drv.Config(), features); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	d := New(Config{Rate: 100, Burst: 100, Source: &pattern{}})
	d.now = func() time.Time { return now }
	d.q, d.chain, d.irq = q, q.NewChain(), &recorder{}
	d.bucket = newBucket(100, 100, now)
	for range 3 {
		drv.AddChain(virtiotest.Buf{Addr: drv.Alloc(64), Len: 64, Write: true})
	}
	big := drv.AddChain(virtiotest.Buf{Addr: drv.Alloc(1000), Len: 1000, Write: true})
	// 100 tokens: the first buffer whole; the second waits for 64.
	wait, err := d.serve()
	if err != nil || wait != 280*time.Millisecond {
		t.Fatalf("serve = %v, %v; want a 280ms wait for the 28 missing tokens", wait, err)
	}
	if _, n, _ := drv.NextUsed(); n != 64 {
		t.Errorf("first buffer %d bytes", n)
	}
	if _, _, ok := drv.NextUsed(); ok {
		t.Fatal("second buffer filled partly")
	}
	now = now.Add(500 * time.Millisecond) // 36+50 tokens
	if wait, err := d.serve(); wait != 420*time.Millisecond || err != nil {
		t.Fatalf("serve = %v, %v; want a 420ms wait", wait, err)
	}
	if _, n, _ := drv.NextUsed(); n != 64 {
		t.Errorf("second buffer %d bytes", n)
	}
	now = now.Add(10 * time.Second) // a full bucket
	if wait, err := d.serve(); wait != 640*time.Millisecond || err != nil {
		t.Fatalf("serve = %v, %v; want a 640ms wait for the big buffer", wait, err)
	}
	if _, n, _ := drv.NextUsed(); n != 64 {
		t.Errorf("third buffer %d bytes", n)
	}
	now = now.Add(10 * time.Second)
	if wait, err := d.serve(); wait != 0 || err != nil {
		t.Fatalf("serve = %v, %v", wait, err)
	}
	if id, n, _ := drv.NextUsed(); id != uint32(big) || n != 100 {
		t.Errorf("buffer larger than the bucket: %d/%d bytes, want %d/100", id, n, big)
	}
}

func TestBucket(t *testing.T) {
	t0 := time.Unix(0, 0)
	b := newBucket(1000, 0, t0) // burst defaults to one second
	if n := b.available(t0); n != 1000 {
		t.Fatalf("initial tokens %d", n)
	}
	b.take(1000)
	if n := b.available(t0); n != 0 || b.waitFor(10) != 10*time.Millisecond {
		t.Fatalf("after draining: %d tokens, wait %v", n, b.waitFor(10))
	}
	if n := b.available(t0.Add(time.Hour)); n != 1000 {
		t.Errorf("tokens after an hour %d, want the 1000 cap", n)
	}
	if b.clamp(5000) != 1000 || b.clamp(64) != 64 {
		t.Error("clamp")
	}
	u := newBucket(0, 0, t0)
	if u.available(t0) == 0 || u.waitFor(1<<40) != 0 || u.clamp(1<<40) != 1<<40 {
		t.Error("unlimited bucket limits")
	}
}

// TestServeAllocs: serving requests from crypto/rand allocates nothing.
func TestServeAllocs(t *testing.T) {
	mem := virtiotest.NewMemory(t, memSize)
	drv := virtiotest.NewDriver(t, mem, 64, 0x1000, memSize)
	q, _ := virtio.NewQueue(QueueSize)
	if err := q.Configure(mem, drv.Config(), features); err != nil {
		t.Fatal(err)
	}
	d := New(Config{Rate: 1 << 30})
	d.q, d.chain, d.irq = q, q.NewChain(), &recorder{}
	d.bucket = newBucket(1<<30, 0, time.Now())
	buf := drv.Alloc(256)
	allocs := testing.AllocsPerRun(500, func() {
		drv.AddChain(virtiotest.Buf{Addr: buf, Len: 256, Write: true})
		if _, err := d.handle(0); err != nil {
			t.Fatal(err)
		}
		drv.NextUsed()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
}

func TestParseConfig(t *testing.T) {
	for _, c := range []struct {
		in    string
		want  *Config
		isErr bool
	}{
		{"true", &Config{}, false},
		{"on", &Config{}, false},
		{"off", nil, false},
		{"rate=4096", &Config{Rate: 4096}, false},
		{"rate=1M/s", &Config{Rate: 1 << 20}, false},
		{"rate=64KiB/s,burst=128K", &Config{Rate: 64 << 10, Burst: 128 << 10}, false},
		{"rate=0", nil, true},
		{"rate=-1", nil, true},
		{"rate=fast", nil, true},
		{"burst=4K", nil, true},
		{"speed=1", nil, true},
		{"rate", nil, true},
	} {
		got, err := ParseConfig(c.in)
		if c.isErr {
			if !errors.Is(err, ErrConfig) {
				t.Errorf("ParseConfig(%q) = %v, %v; want ErrConfig", c.in, got, err)
			}
			continue
		}
		if err != nil || (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("ParseConfig(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// TestRateLimitedDriverLoop plays a driver that keeps one 64-byte request
// outstanding, as Linux's virtio-rng does: under a rate limit the worker
// waits for its timer and fills each request whole.
func TestRateLimitedDriverLoop(t *testing.T) {
	const rate = 2048
	r := newRig(t, Config{Rate: rate, Burst: 256}, 64, virtio.FeatureVersion1|virtio.FeatureEventIdx)
	buf := r.drv.Alloc(64)
	total := 0
	for total < 1024 {
		r.drv.SetUsedEvent(r.drv.UsedIdx())
		r.drv.AddChain(virtiotest.Buf{Addr: buf, Len: 64, Write: true})
		r.notify.Signal()
		_, n := r.used(t)
		if n != 64 {
			t.Fatalf("a %d-byte fill of a 64-byte buffer under a %d B/s limit", n, rate)
		}
		total += int(n)
	}
}
