package net

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// fakeTap is a Backend made of SOCK_SEQPACKET socket pairs: the device
// owns one end of each, the test plays the host kernel on the other.
type fakeTap struct {
	dev, peer []int
	mu        sync.Mutex
	offload   uint
	hdrSize   int
	enabled   []bool
	closed    bool
}

func newFakeTap(t testing.TB, queues int) *fakeTap {
	t.Helper()
	f := &fakeTap{}
	for range queues {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range fds {
			// Room for several 64 KiB packets in flight.
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
		}
		f.dev = append(f.dev, fds[0])
		f.peer = append(f.peer, fds[1])
		f.enabled = append(f.enabled, true)
	}
	t.Cleanup(func() {
		f.Close()
		for _, fd := range f.peer {
			unix.Close(fd)
		}
	})
	return f
}

func (f *fakeTap) Name() string { return "fake0" }
func (f *fakeTap) Queues() int  { return len(f.dev) }
func (f *fakeTap) FD(i int) int { return f.dev[i] }
func (f *fakeTap) SetVnetHdrSize(n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hdrSize = n
	return nil
}
func (f *fakeTap) SetOffload(o uint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offload = o
	return nil
}
func (f *fakeTap) SetQueueEnabled(i int, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.enabled[i] = on
	return nil
}
func (f *fakeTap) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		for _, fd := range f.dev {
			unix.Close(fd)
		}
		f.closed = true
	}
	return nil
}

func (f *fakeTap) state() (offload uint, enabled []bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.offload, append([]bool(nil), f.enabled...)
}

// inject writes a packet (header and frame) as the host kernel would.
func (f *fakeTap) inject(t testing.TB, q int, pkt []byte) {
	t.Helper()
	if _, err := unix.Write(f.peer[q], pkt); err != nil {
		t.Fatalf("injecting into queue %d: %v", q, err)
	}
}

// take reads the next packet the device wrote to queue q, waiting up to
// wait; nil when none came.
func (f *fakeTap) take(t testing.TB, q int, wait time.Duration) []byte {
	t.Helper()
	buf := make([]byte, maxPacketLen+1)
	pfd := []unix.PollFd{{Fd: int32(f.peer[q]), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, int(wait/time.Millisecond)); err != nil || n == 0 {
		return nil
	}
	n, err := unix.Read(f.peer[q], buf)
	if err != nil {
		t.Fatalf("reading queue %d: %v", q, err)
	}
	return buf[:n]
}

// recorder is the transport side of an activation.
type recorder = virtiotest.Recorder

const (
	memSize  = 32 << 20
	queueMem = 1 << 20 // per queue: rings and buffers
	qsize    = 256
)

// rig is an activated device with a fake driver per queue.
type rig struct {
	mem      *guestmem.Memory
	tap      *fakeTap
	dev      *Device
	rec      *recorder
	drv      []*virtiotest.Driver // rx0, tx0, rx1, tx1, ..., ctrl
	queues   []*virtio.Queue
	notify   []*hostos.EventFD
	features uint64
}

// newRig builds a device with cfg over a fake TAP and activates it with
// the given features (VERSION_1 added).
func newRig(t testing.TB, cfg Config, features uint64) *rig {
	t.Helper()
	r := buildRig(t, cfg, features)
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	return r
}

// buildRig is newRig without the activation.
func buildRig(t testing.TB, cfg Config, features uint64) *rig {
	t.Helper()
	if cfg.Tap == "" {
		cfg.Tap = "fake0"
	}
	cfg, err := cfg.Normalized()
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{mem: virtiotest.NewMemory(t, memSize), tap: newFakeTap(t, cfg.Queues), rec: &recorder{}, features: features | virtio.FeatureVersion1}
	if r.dev, err = New(cfg, r.tap); err != nil {
		t.Fatal(err)
	}
	for i, max := range r.dev.QueueMaxSizes() {
		base := uint64(i+1) * queueMem
		d := virtiotest.NewDriver(t, r.mem, qsize, base, base+queueMem)
		q, err := virtio.NewQueue(max)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Configure(r.mem, d.Config(), r.features); err != nil {
			t.Fatal(err)
		}
		ev, err := hostos.NewEventFD()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ev.Close() })
		r.drv, r.queues, r.notify = append(r.drv, d), append(r.queues, q), append(r.notify, ev)
	}
	t.Cleanup(func() { r.dev.Close() })
	return r
}

func (r *rig) ctx() virtio.ActivateContext {
	return virtio.ActivateContext{
		Mem: r.mem, Features: r.features, Queues: r.queues, Notify: r.notify,
		Interrupt: r.rec, NeedsReset: r.rec.NeedsReset, Log: slog.New(slog.DiscardHandler),
	}
}

func (r *rig) rx(pair int) *virtiotest.Driver { return r.drv[2*pair] }
func (r *rig) tx(pair int) *virtiotest.Driver { return r.drv[2*pair+1] }
func (r *rig) ctrl() *virtiotest.Driver       { return r.drv[len(r.drv)-1] }

// kick notifies queue i as the driver would.
func (r *rig) kick(i int) { r.notify[i].Signal() }

// waitUsed waits for the next used element of d.
func waitUsed(t testing.TB, d *virtiotest.Driver) (uint32, uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if id, n, ok := d.NextUsed(); ok {
			return id, n
		}
		time.Sleep(200 * time.Microsecond)
	}
	t.Fatal("timed out waiting for a used buffer")
	return 0, 0
}

// noUsed checks that d gets no used element within a short while.
func noUsed(t testing.TB, d *virtiotest.Driver) {
	t.Helper()
	time.Sleep(20 * time.Millisecond)
	if id, n, ok := d.NextUsed(); ok {
		t.Fatalf("unexpected used element %d/%d", id, n)
	}
}

// putBytes writes b into a fresh guest buffer of d and returns it.
func putBytes(t testing.TB, d *virtiotest.Driver, b []byte) virtiotest.Buf {
	t.Helper()
	a := d.Alloc(uint64(max(len(b), 1)))
	if err := d.Mem.WriteAt(b, a); err != nil {
		t.Fatal(err)
	}
	return virtiotest.Buf{Addr: a, Len: uint32(len(b))}
}

// rxBuf allocates an n-byte device-writable buffer.
func rxBuf(d *virtiotest.Driver, n uint32) virtiotest.Buf {
	return virtiotest.Buf{Addr: d.Alloc(uint64(n)), Len: n, Write: true}
}

// frame builds an Ethernet frame of n bytes with a recognisable payload.
func frame(n int, seed byte) []byte {
	f := make([]byte, n)
	copy(f, []byte{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00})
	for i := ethHeaderLen; i < n; i++ {
		f[i] = seed + byte(i*7)
	}
	return f
}

// hdrBytes encodes a header.
func hdrBytes(h header) []byte {
	b := make([]byte, hdrLen)
	h.encode(b)
	return b
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// ctrlCmd sends one control command and returns the acknowledgement
// (or -1 when the device wrote none).
func (r *rig) ctrlCmd(t testing.TB, class, cmd byte, data []byte) int {
	t.Helper()
	d := r.ctrl()
	bufs := []virtiotest.Buf{putBytes(t, d, []byte{class, cmd})}
	if len(data) > 0 {
		bufs = append(bufs, putBytes(t, d, data))
	}
	ack := rxBuf(d, 1)
	d.Mem.WriteAt([]byte{0xee}, ack.Addr)
	d.AddChain(append(bufs, ack)...)
	r.kick(len(r.drv) - 1)
	_, n := waitUsed(t, d)
	if n != 1 {
		return -1
	}
	var b [1]byte
	if err := d.Mem.ReadAt(b[:], ack.Addr); err != nil {
		t.Fatal(err)
	}
	return int(b[0])
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

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
