package console

import (
	"encoding/binary"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

const (
	memSize    = 16 << 20
	regionSize = 1 << 20 // guest memory per queue: rings and buffers
	bufSize    = 4096    // the guest's receive buffers, a page as Linux posts
)

var quiet = slog.New(slog.DiscardHandler)

// recorder is the transport side of an activation.
type recorder = virtiotest.Recorder

// gq is the guest side of one queue: a fake driver that remembers where
// the buffers it posted live.
type gq struct {
	*virtiotest.Driver
	bufs map[uint16]uint64 // head -> buffer address of posted writable buffers
}

// post makes n writable buffers of size bytes available.
func (g *gq) post(n int, size uint32) {
	for range n {
		a := g.Alloc(uint64(size))
		h := g.AddChain(virtiotest.Buf{Addr: a, Len: size, Write: true})
		g.bufs[h] = a
	}
}

// send makes data available as one device-readable buffer.
func (g *gq) send(data []byte) uint16 {
	a := g.Alloc(uint64(len(data)))
	if err := g.Mem.WriteAt(data, a); err != nil {
		panic(err)
	}
	return g.AddChain(virtiotest.Buf{Addr: a, Len: uint32(len(data))})
}

// taken returns the bytes the device wrote into the next used buffer.
func (g *gq) taken(t testing.TB) ([]byte, bool) {
	t.Helper()
	id, n, ok := g.NextUsed()
	if !ok {
		return nil, false
	}
	a, known := g.bufs[uint16(id)]
	if !known {
		t.Fatalf("used id %d was not a posted buffer", id)
	}
	return virtiotest.Bytes(t, g.Mem, a, int(n)), true
}

// rig is a device activated on fake guest queues.
type rig struct {
	t      testing.TB
	mem    *guestmem.Memory
	dev    *Device
	q      []*virtio.Queue
	g      []*gq
	notify []*hostos.EventFD
	rec    *recorder
	feat   uint64
}

// newRig builds the device and lays out every queue it has in its own
// 1 MiB of guest memory. Nothing is activated yet.
func newRig(t testing.TB, cfg Config, features uint64) *rig {
	t.Helper()
	dev, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sizes := dev.QueueMaxSizes()
	if uint64(len(sizes))*regionSize > memSize {
		t.Fatalf("%d queues do not fit the test memory", len(sizes))
	}
	r := &rig{t: t, mem: virtiotest.NewMemory(t, memSize), dev: dev, rec: &recorder{}, feat: features}
	for i, max := range sizes {
		size := min(max, 16)
		base := uint64(i) * regionSize
		drv := virtiotest.NewDriver(t, r.mem, size, base+0x100, base+regionSize)
		q, err := virtio.NewQueue(max)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Configure(r.mem, drv.Config(), features); err != nil {
			t.Fatal(err)
		}
		ev, err := hostos.NewEventFD()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ev.Close() })
		r.q = append(r.q, q)
		r.g = append(r.g, &gq{Driver: drv, bufs: map[uint16]uint64{}})
		r.notify = append(r.notify, ev)
	}
	return r
}

func (r *rig) ctx() virtio.ActivateContext {
	return virtio.ActivateContext{
		Mem: r.mem, Features: r.feat, Queues: r.q, Notify: r.notify,
		Interrupt: r.rec, NeedsReset: r.rec.NeedsReset, Log: quiet,
	}
}

// start activates the device with its worker goroutine.
func (r *rig) start() {
	r.t.Helper()
	if err := r.dev.Activate(r.ctx()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(r.dev.Reset)
}

// startSync sets the device up as Activate does but without a worker:
// the test drives it with pass.
func (r *rig) startSync() {
	r.t.Helper()
	wake, err := hostos.NewEventFD()
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { wake.Close() })
	r.dev.svc.Lock()
	defer r.dev.svc.Unlock()
	if err := r.dev.start(r.ctx(), quiet, r.feat&FeatureMultiport != 0, wake); err != nil {
		r.t.Fatal(err)
	}
}

// pass runs one service pass, letting the sockets accept and note
// hang-ups first, as the worker does after a poll.
func (r *rig) pass() {
	r.t.Helper()
	d := r.dev
	d.svc.Lock()
	defer d.svc.Unlock()
	for _, p := range d.socks {
		p.sock.polled(1, 0)
	}
	if err := d.service(); err != nil {
		r.t.Fatalf("service: %v", err)
	}
}

// kick notifies queue i as the guest's driver would.
func (r *rig) kick(i int) { r.notify[i].Signal() }

// ctrl sends a control message from the guest.
func (r *rig) ctrl(id uint32, event, value uint16) {
	var b [ControlSize]byte
	Control{ID: id, Event: event, Value: value}.Put(b[:])
	r.g[ctrlTxQueue].send(b[:])
	r.kick(ctrlTxQueue)
}

// msg is a control message received by the guest.
type msg struct {
	Control
	name string
}

// received returns the control messages the device sent so far.
func (r *rig) received() []msg {
	r.t.Helper()
	var out []msg
	for {
		b, ok := r.g[ctrlRxQueue].taken(r.t)
		if !ok {
			return out
		}
		c, ok := ParseControl(b)
		if !ok {
			r.t.Fatalf("short control message %x", b)
		}
		out = append(out, msg{Control: c, name: string(b[ControlSize:])})
	}
}

// waitMsgs waits until n more control messages arrived (worker rigs).
func (r *rig) waitMsgs(n int) []msg {
	r.t.Helper()
	var out []msg
	eventually(r.t, func() bool {
		out = append(out, r.received()...)
		return len(out) >= n
	}, "%d control messages (got %v)", n, &out)
	return out
}

// eventually polls cond for up to ten seconds.
func eventually(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+format, args...)
		}
		time.Sleep(time.Millisecond)
	}
}

// listen opens a channel socket in the test's directory.
func listen(t testing.TB, name string) *Socket {
	t.Helper()
	s, err := Listen(filepath.Join(t.TempDir(), name), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dial connects a client to s.
func dial(t testing.TB, s *Socket) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: s.Path(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// pattern returns n bytes cycling through every byte value, offset by seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i) + seed
	}
	return b
}

// virtioBuf is a buffer at addr.
func virtioBuf(addr uint64, n uint32, write bool) virtiotest.Buf {
	return virtiotest.Buf{Addr: addr, Len: n, Write: write}
}

// bufOf allocates a buffer of n bytes on g's heap.
func bufOf(g *gq, n uint32, write bool) virtiotest.Buf {
	return virtioBuf(g.Alloc(uint64(max(n, 1))), n, write)
}

// availIdx reads the queue's available index.
func (g *gq) availIdx(t testing.TB) uint16 {
	v, err := g.Mem.Uint16(g.Avail + 2)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// openConsole opens a single-port console's input gate as a guest would:
// it writes to the console, then the clock moves past the settle time.
func (r *rig) openConsole() {
	r.t.Helper()
	r.g[1].send([]byte("boot\n"))
	r.pass()
	later := time.Now().Add(gateSettle)
	r.dev.now = func() time.Time { return later }
	r.pass()
	if !r.dev.ports[0].guestOpen {
		r.t.Fatal("console input gate still closed")
	}
}
