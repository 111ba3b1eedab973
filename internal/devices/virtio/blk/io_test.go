package blk

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// scriptedDisk wraps a backend: it records operations, fails those named
// in fail, and can hold flushes until released.
type scriptedDisk struct {
	backend
	mu        sync.Mutex
	ops       []string
	fail      map[string]error
	holdFlush chan struct{} // when set, flush waits for it
	inFlush   chan struct{}
}

func (s *scriptedDisk) record(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, op)
	return s.fail[op]
}

func (s *scriptedDisk) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ops...)
}

func (s *scriptedDisk) readv(sc *iovScratch, bufs [][]byte, off int64) error {
	if err := s.record("read"); err != nil {
		return err
	}
	return s.backend.readv(sc, bufs, off)
}

func (s *scriptedDisk) writev(sc *iovScratch, bufs [][]byte, off int64) error {
	if err := s.record("write"); err != nil {
		return err
	}
	return s.backend.writev(sc, bufs, off)
}

func (s *scriptedDisk) flush() error {
	if s.holdFlush != nil {
		s.inFlush <- struct{}{}
		<-s.holdFlush
	}
	if err := s.record("flush"); err != nil {
		return err
	}
	return s.backend.flush()
}

// countingHandler counts log records at or above a level.
type countingHandler struct {
	level slog.Level
	n     atomic.Int32
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *countingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// TestHostIOErrors: EIO and ENOSPC from the file become IOERR for that
// request only, with one log line however many fail; the device keeps
// serving.
func TestHostIOErrors(t *testing.T) {
	h := &countingHandler{level: slog.LevelError}
	dev, err := Open(Config{Path: newImage(t, make([]byte, diskSize))}, slog.New(h))
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	sd := &scriptedDisk{backend: dev.disk, fail: map[string]error{"write": unix.ENOSPC, "read": unix.EIO}}
	dev.disk = sd
	r := activate(t, dev, dev.Features())
	for range 20 {
		if res := r.do(0, typeOut, 0, make([]byte, SectorSize), 0); res.status != statusIOErr {
			t.Fatalf("write with ENOSPC: status %d", res.status)
		}
		if res := r.do(0, typeIn, 0, nil, SectorSize); res.status != statusIOErr {
			t.Fatalf("read with EIO: status %d", res.status)
		}
	}
	if n := h.n.Load(); n != 1 {
		t.Errorf("%d error log lines for 40 failures, want 1 (rate-limited)", n)
	}
	sd.mu.Lock()
	sd.fail = nil
	sd.mu.Unlock()
	if res := r.do(0, typeOut, 0, make([]byte, SectorSize), 0); res.status != statusOK {
		t.Errorf("write after the errors cleared: status %d", res.status)
	}
	if err := r.rec.Failure(); err != nil {
		t.Errorf("I/O errors marked the device broken: %v", err)
	}
}

// TestFlushOrdering: a FLUSH completes only after the backend flush has
// returned, and only after the writes acknowledged before it reached the
// backend; a failed flush is IOERR.
func TestFlushOrdering(t *testing.T) {
	dev, err := Open(Config{Path: newImage(t, make([]byte, diskSize))}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	sd := &scriptedDisk{backend: dev.disk, holdFlush: make(chan struct{}), inFlush: make(chan struct{}, 1)}
	dev.disk = sd
	r := activate(t, dev, dev.Features())
	if res := r.do(0, typeOut, 0, make([]byte, SectorSize), 0); res.status != statusOK {
		t.Fatal("write failed")
	}
	q := r.qs[0]
	r.write(q.hdr, header(typeFlush, 0))
	q.drv.AddChain(virtiotest.Buf{Addr: q.hdr, Len: headerSize}, virtiotest.Buf{Addr: q.status, Len: 1, Write: true})
	q.notify.Signal()
	<-sd.inFlush
	time.Sleep(20 * time.Millisecond)
	if _, _, ok := q.drv.NextUsed(); ok {
		t.Fatal("FLUSH completed while the backend flush was still running")
	}
	close(sd.holdFlush)
	r.wait(0)
	if got := sd.log(); len(got) != 2 || got[0] != "write" || got[1] != "flush" {
		t.Errorf("backend operations %v, want [write flush]", got)
	}
	sd.holdFlush = nil
	sd.mu.Lock()
	sd.fail = map[string]error{"flush": unix.EIO}
	sd.mu.Unlock()
	if res := r.do(0, typeFlush, 0, nil, 0); res.status != statusIOErr {
		t.Errorf("failed flush: status %d", res.status)
	}
}

// TestFlushErrorIsSticky: once fdatasync has failed, later flushes fail
// too, since the kernel may have dropped the data that was not written.
func TestFlushErrorIsSticky(t *testing.T) {
	var calls atomic.Int32
	fdatasync = func(fd int) error {
		if calls.Add(1) == 2 {
			return unix.EIO
		}
		return unix.Fdatasync(fd)
	}
	// Cleanups run last-registered first: the device stops before the
	// real fdatasync comes back.
	t.Cleanup(func() { fdatasync = unix.Fdatasync })
	r := newRig(t, Config{Path: newImage(t, make([]byte, diskSize))})
	for i, want := range []byte{statusOK, statusIOErr, statusIOErr, statusIOErr} {
		if res := r.do(0, typeFlush, 0, nil, 0); res.status != want {
			t.Errorf("flush %d: status %d, want %d", i, res.status, want)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("fdatasync called %d times, want 2 (not again after a failure)", n)
	}
}

// TestServeAllocs: serving reads, writes, flushes, GET_ID, discards and
// write-zeroes does not allocate.
func TestServeAllocs(t *testing.T) {
	dev, err := Open(Config{Path: newImage(t, make([]byte, diskSize))}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	mem := virtiotest.NewMemory(t, memSize)
	drv := virtiotest.NewDriver(t, mem, queueSize, 0x1000, memSize)
	q, _ := virtio.NewQueue(defaultQueueSize)
	if err := q.Configure(mem, drv.Config(), dev.Features()); err != nil {
		t.Fatal(err)
	}
	s := newQueueServer(dev, 0, q, &recorder{})
	hdr, data, status := drv.Alloc(16*8), drv.Alloc(64<<10), drv.Alloc(8)
	var reqs [][]virtiotest.Buf
	add := func(i int, typ uint32, sector uint64, bufs ...virtiotest.Buf) {
		mem.WriteAt(header(typ, sector), hdr+uint64(16*i))
		b := append([]virtiotest.Buf{{Addr: hdr + uint64(16*i), Len: 16}}, bufs...)
		reqs = append(reqs, append(b, virtiotest.Buf{Addr: status + uint64(i), Len: 1, Write: true}))
	}
	add(0, typeIn, 0, virtiotest.Buf{Addr: data, Len: 16 << 10, Write: true}, virtiotest.Buf{Addr: data + 16<<10, Len: 16 << 10, Write: true})
	add(1, typeOut, 64, virtiotest.Buf{Addr: data, Len: 4096}, virtiotest.Buf{Addr: data + 8192, Len: 4096})
	add(2, typeFlush, 0)
	add(3, typeGetID, 0, virtiotest.Buf{Addr: data, Len: 20, Write: true})
	mem.WriteAt(seg(128, 8, 0), data+32<<10)
	add(4, typeDiscard, 0, virtiotest.Buf{Addr: data + 32<<10, Len: 16})
	add(5, typeWriteZeroes, 0, virtiotest.Buf{Addr: data + 32<<10, Len: 16})
	add(6, 99, 0)
	for i, r := range reqs {
		allocs := testing.AllocsPerRun(50, func() {
			drv.AddChain(r...)
			if _, err := s.handle(0); err != nil {
				t.Fatal(err)
			}
			if _, _, ok := drv.NextUsed(); !ok {
				t.Fatal("request not completed")
			}
		})
		if st := virtiotest.Bytes(t, mem, status+uint64(i), 1)[0]; st != statusOK && i != 6 {
			t.Errorf("request %d: status %d", i, st)
		}
		if allocs != 0 {
			t.Errorf("request %d: %v allocations, want 0", i, allocs)
		}
	}
}

// TestQuiesceAndState: Reset waits for the workers and keeps the
// queues' positions, so a transport can save them and start the device
// again (Quiesce, Resume); the device's own state restores onto a device
// opened for the same disk and refuses another disk.
func TestQuiesceAndState(t *testing.T) {
	path := newImage(t, pattern(diskSize, 7))
	r := newRig(t, Config{Path: path, ID: "d0", Queues: 2})
	for range 3 {
		r.do(0, typeIn, 0, nil, SectorSize)
	}
	r.do(1, typeIn, 0, nil, SectorSize)
	r.dev.Reset() // Quiesce
	if got := r.qs[0].q.State(); got.NextUsed != 3 || got.LastAvail != 3 {
		t.Fatalf("queue state after quiesce %+v", got)
	}
	if err := r.dev.Activate(r.ctx(r.dev.Features())); err != nil { // Resume
		t.Fatal(err)
	}
	if res := r.do(0, typeIn, 1, nil, SectorSize); res.status != statusOK || !bytes.Equal(res.data, pattern(diskSize, 7)[SectorSize:2*SectorSize]) {
		t.Fatalf("request after resume: status %d", res.status)
	}

	var _ virtio.Snapshotter = r.dev
	saved, err := r.dev.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	st := r.dev.State()
	if st.Config.Path != path || st.Config.ID != "d0" || st.Config.Serial != "d0" || st.Capacity != diskSize/SectorSize || st.Config.Format != FormatRaw {
		t.Fatalf("state %+v", st)
	}
	same, err := Open(Config{Path: path, ID: "d0", Queues: 2}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	if err := same.RestoreState(saved); err != nil {
		t.Errorf("restoring onto the same disk: %v", err)
	}
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"another image", Config{Path: newImage(t, make([]byte, diskSize)), ID: "d0", Queues: 2}},
		{"fewer queues", Config{Path: path, ID: "d0"}},
		{"read-only", Config{Path: path, ID: "d0", Queues: 2, ReadOnly: true}},
	} {
		other, err := Open(c.cfg, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := other.RestoreState(saved); !errors.Is(err, ErrState) {
			t.Errorf("%s: RestoreState = %v, want ErrState", c.name, err)
		}
		other.Close()
	}
	// The image grew since the snapshot.
	if err := os.Truncate(path, 2*diskSize); err != nil {
		t.Fatal(err)
	}
	grown, err := Open(Config{Path: path, ID: "d0", Queues: 2}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer grown.Close()
	if err := grown.RestoreState(saved); !errors.Is(err, ErrState) {
		t.Errorf("grown image: RestoreState = %v, want ErrState", err)
	}
	if err := same.RestoreState([]byte("{not json")); !errors.Is(err, ErrState) {
		t.Errorf("garbage state: %v", err)
	}
}
