package blk

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

const (
	memSize   = 8 << 20
	queueSize = 64
	scratchSz = 256 << 10 // per-queue data buffer of the fake driver
)

// recorder is the transport side of an activation.
type recorder = virtiotest.Recorder

// queueRig is the fake driver of one queue with its reusable buffers.
type queueRig struct {
	drv               *virtiotest.Driver
	q                 *virtio.Queue
	notify            *hostos.EventFD
	hdr, data, status uint64
	indirect          uint64
}

type rig struct {
	t    *testing.T
	mem  *guestmem.Memory
	qs   []*queueRig
	rec  *recorder
	dev  *Device
	path string
}

// pattern returns n bytes of a recognisable sequence starting at seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/SectorSize) ^ byte(i) ^ seed
	}
	return b
}

// newImage writes content to a new file and returns its path.
func newImage(t testing.TB, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newRig opens a device for cfg and activates it with every offered
// feature and cfg's queue count, each queue laid out by a fake driver.
func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	dev, err := Open(cfg, quietLog())
	if err != nil {
		t.Fatalf("Open(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { dev.Close() })
	return activate(t, dev, dev.Features())
}

func activate(t *testing.T, dev *Device, features uint64) *rig {
	t.Helper()
	mem := virtiotest.NewMemory(t, memSize)
	r := &rig{t: t, mem: mem, rec: &recorder{}, dev: dev, path: dev.cfg.Path}
	n := dev.cfg.queues()
	per := uint64(memSize / n)
	for i := range n {
		base := uint64(i)*per + 0x1000
		drv := virtiotest.NewDriver(t, mem, queueSize, base, base-0x1000+per)
		q, err := virtio.NewQueue(defaultQueueSize)
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
		r.qs = append(r.qs, &queueRig{
			drv: drv, q: q, notify: ev,
			hdr: drv.Alloc(64), status: drv.Alloc(16), data: drv.Alloc(scratchSz), indirect: drv.Alloc(16 * queueSize),
		})
	}
	if err := dev.Activate(r.ctx(features)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Reset)
	return r
}

func (r *rig) ctx(features uint64) virtio.ActivateContext {
	ctx := virtio.ActivateContext{
		Mem: r.mem, Features: features, Interrupt: r.rec, NeedsReset: r.rec.NeedsReset, Log: quietLog(),
	}
	for _, q := range r.qs {
		ctx.Queues = append(ctx.Queues, q.q)
		ctx.Notify = append(ctx.Notify, q.notify)
	}
	return ctx
}

// header encodes a request header.
func header(typ uint32, sector uint64) []byte {
	b := make([]byte, headerSize)
	binary.LittleEndian.PutUint32(b, typ)
	binary.LittleEndian.PutUint64(b[8:], sector)
	return b
}

// seg encodes a discard or write-zeroes segment.
func seg(sector uint64, num, flags uint32) []byte {
	b := make([]byte, segmentSize)
	binary.LittleEndian.PutUint64(b, sector)
	binary.LittleEndian.PutUint32(b[8:], num)
	binary.LittleEndian.PutUint32(b[12:], flags)
	return b
}

func (r *rig) write(gpa uint64, b []byte) {
	r.t.Helper()
	if err := r.mem.WriteAt(b, gpa); err != nil {
		r.t.Fatal(err)
	}
}

// wait waits for the next used element of queue qi.
func (r *rig) wait(qi int) (id, n uint32) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if id, n, ok := r.qs[qi].drv.NextUsed(); ok {
			return id, n
		}
		time.Sleep(100 * time.Microsecond)
	}
	r.t.Fatal("timed out waiting for a used buffer")
	return 0, 0
}

// result is a completed request.
type result struct {
	status byte
	data   []byte // device-written data
	used   uint32
}

// do sends one request on queue qi in the usual layout: the header, the
// data to write (if any), inLen bytes to read (if any), the status byte.
func (r *rig) do(qi int, typ uint32, sector uint64, out []byte, inLen int) result {
	r.t.Helper()
	q := r.qs[qi]
	if len(out) > scratchSz || inLen > scratchSz {
		r.t.Fatal("request too large for the rig")
	}
	r.write(q.hdr, header(typ, sector))
	r.write(q.status, []byte{0xee})
	bufs := []virtiotest.Buf{{Addr: q.hdr, Len: headerSize}}
	if len(out) > 0 {
		r.write(q.data, out)
		bufs = append(bufs, virtiotest.Buf{Addr: q.data, Len: uint32(len(out))})
	}
	if inLen > 0 {
		r.write(q.data, bytes.Repeat([]byte{0xdd}, inLen))
		bufs = append(bufs, virtiotest.Buf{Addr: q.data, Len: uint32(inLen), Write: true})
	}
	bufs = append(bufs, virtiotest.Buf{Addr: q.status, Len: 1, Write: true})
	head := q.drv.AddChain(bufs...)
	q.notify.Signal()
	id, n := r.wait(qi)
	if id != uint32(head) {
		r.t.Fatalf("used id %d, want %d", id, head)
	}
	res := result{used: n, status: virtiotest.Bytes(r.t, r.mem, q.status, 1)[0]}
	if inLen > 0 {
		res.data = virtiotest.Bytes(r.t, r.mem, q.data, inLen)
	}
	return res
}

// chain sends an arbitrary chain on queue qi and waits for it.
func (r *rig) chain(qi int, bufs ...virtiotest.Buf) (id, n uint32) {
	r.t.Helper()
	q := r.qs[qi]
	head := q.drv.AddChain(bufs...)
	q.notify.Signal()
	id, n = r.wait(qi)
	if id != uint32(head) {
		r.t.Fatalf("used id %d, want %d", id, head)
	}
	return id, n
}

// fileBytes reads the image back.
func (r *rig) fileBytes() []byte {
	r.t.Helper()
	b, err := os.ReadFile(r.path)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
