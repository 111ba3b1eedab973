package virtio_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

const (
	memSize   = 1 << 20
	queueBase = 0x1000
	allFeat   = virtio.FeatureVersion1 | virtio.FeatureEventIdx | virtio.FeatureIndirectDesc
)

// setup returns guest memory, a driver for a queue of size n, and the
// device's queue configured with features.
func setup(t testing.TB, n uint16, features uint64) (*guestmem.Memory, *virtiotest.Driver, *virtio.Queue) {
	t.Helper()
	mem := virtiotest.NewMemory(t, memSize)
	d := virtiotest.NewDriver(t, mem, n, queueBase, memSize)
	q, err := virtio.NewQueue(256)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Configure(mem, d.Config(), features); err != nil {
		t.Fatalf("Configure(%v): %v", d, err)
	}
	return mem, d, q
}

func TestNewQueueMaxSize(t *testing.T) {
	for _, n := range []uint16{0, 3, 100, 65535, 0xc000} {
		if _, err := virtio.NewQueue(n); !errors.Is(err, virtio.ErrQueueMaxSize) {
			t.Errorf("NewQueue(%d) = %v, want ErrQueueMaxSize", n, err)
		}
	}
	for _, n := range []uint16{1, 2, 256, 32768} {
		if _, err := virtio.NewQueue(n); err != nil {
			t.Errorf("NewQueue(%d): %v", n, err)
		}
	}
}

func TestConfigureValidation(t *testing.T) {
	mem := virtiotest.NewMemory(t, memSize)
	good := virtio.QueueConfig{Size: 16, DescTable: 0x1000, AvailRing: 0x2000, UsedRing: 0x3000}
	for _, c := range []struct {
		name string
		mod  func(*virtio.QueueConfig)
		want error
	}{
		{"good", func(*virtio.QueueConfig) {}, nil},
		{"size zero", func(c *virtio.QueueConfig) { c.Size = 0 }, virtio.ErrQueueSize},
		{"size not power of two", func(c *virtio.QueueConfig) { c.Size = 12 }, virtio.ErrQueueSize},
		{"size above maximum", func(c *virtio.QueueConfig) { c.Size = 512 }, virtio.ErrQueueSize},
		{"descriptor table misaligned", func(c *virtio.QueueConfig) { c.DescTable = 0x1008 }, virtio.ErrQueueAlign},
		{"available ring misaligned", func(c *virtio.QueueConfig) { c.AvailRing = 0x2001 }, virtio.ErrQueueAlign},
		{"used ring misaligned", func(c *virtio.QueueConfig) { c.UsedRing = 0x3002 }, virtio.ErrQueueAlign},
		{"available ring at 2 mod 4 is fine", func(c *virtio.QueueConfig) { c.AvailRing = 0x2002 }, nil},
		{"descriptor table outside RAM", func(c *virtio.QueueConfig) { c.DescTable = memSize }, virtio.ErrQueueRange},
		{"descriptor table crosses the end of RAM", func(c *virtio.QueueConfig) { c.DescTable = memSize - 16*8 }, virtio.ErrQueueRange},
		{"used ring event field past RAM", func(c *virtio.QueueConfig) { c.UsedRing = memSize - 4 - 8*16 }, virtio.ErrQueueRange},
		{"address wraps", func(c *virtio.QueueConfig) { c.AvailRing = ^uint64(1) }, virtio.ErrQueueRange},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, _ := virtio.NewQueue(256)
			cfg := good
			c.mod(&cfg)
			err := q.Configure(mem, cfg, allFeat)
			if c.want == nil {
				if err != nil || !q.Ready() {
					t.Fatalf("Configure = %v, ready %v", err, q.Ready())
				}
				return
			}
			if !errors.Is(err, c.want) || !errors.Is(err, virtio.ErrBadQueue) {
				t.Fatalf("Configure = %v, want %v and ErrBadQueue", err, c.want)
			}
			if q.Ready() {
				t.Fatal("queue ready after a failed Configure")
			}
		})
	}
}

func TestNotReady(t *testing.T) {
	q, _ := virtio.NewQueue(8)
	c := q.NewChain()
	if _, err := q.Pop(c); !errors.Is(err, virtio.ErrQueueNotReady) {
		t.Errorf("Pop = %v", err)
	}
	if err := q.AddUsed(0, 0); !errors.Is(err, virtio.ErrQueueNotReady) {
		t.Errorf("AddUsed = %v", err)
	}
	if _, err := q.NeedsNotify(); !errors.Is(err, virtio.ErrQueueNotReady) {
		t.Errorf("NeedsNotify = %v", err)
	}
}

func TestDirectChain(t *testing.T) {
	mem, d, q := setup(t, 16, allFeat)
	in1, in2 := d.Alloc(5), d.Alloc(7)
	out1, out2 := d.Alloc(4), d.Alloc(100)
	mem.WriteAt([]byte("hello"), in1)
	mem.WriteAt([]byte(", world"), in2)
	head := d.AddChain(
		virtiotest.Buf{Addr: in1, Len: 5},
		virtiotest.Buf{Addr: in2, Len: 7},
		virtiotest.Buf{Addr: out1, Len: 4, Write: true},
		virtiotest.Buf{Addr: out2, Len: 100, Write: true},
	)
	c := q.NewChain()
	ok, err := q.Pop(c)
	if !ok || err != nil {
		t.Fatalf("Pop = %v, %v", ok, err)
	}
	if c.Head() != head || c.Len() != 4 || c.ReadableLen() != 12 || c.WritableLen() != 104 {
		t.Fatalf("chain head %d len %d readable %d writable %d", c.Head(), c.Len(), c.ReadableLen(), c.WritableLen())
	}
	// ReadAt across the descriptor boundary does not move the cursor.
	var hdr [6]byte
	if n, err := c.ReadAt(hdr[:], 3); n != 6 || err != nil || string(hdr[:]) != "lo, wo" {
		t.Fatalf("ReadAt = %d, %v, %q", n, err, hdr)
	}
	if n, err := c.ReadAt(hdr[:], 10); n != 2 || err != io.EOF {
		t.Fatalf("ReadAt past the end = %d, %v", n, err)
	}
	if n := c.Skip(2); n != 2 || c.Remaining() != 10 {
		t.Fatalf("Skip = %d, remaining %d", n, c.Remaining())
	}
	all, err := io.ReadAll(c)
	if err != nil || string(all) != "llo, world" {
		t.Fatalf("ReadAll = %q, %v", all, err)
	}
	if n, err := c.Read(hdr[:]); n != 0 || err != io.EOF {
		t.Fatalf("Read at end = %d, %v", n, err)
	}
	if n, err := c.Write([]byte("abcdef")); n != 6 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if n, err := c.WriteAt([]byte("XY"), 8); n != 2 || err != nil {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	if c.Written() != 10 || c.WritableRemaining() != 98 {
		t.Fatalf("Written = %d, remaining %d", c.Written(), c.WritableRemaining())
	}
	if got := virtiotest.Bytes(t, mem, out1, 4); string(got) != "abcd" {
		t.Errorf("first writable buffer %q", got)
	}
	if got := virtiotest.Bytes(t, mem, out2, 6); string(got) != "ef\x00\x00XY" {
		t.Errorf("second writable buffer %q", got)
	}
	big := bytes.Repeat([]byte{'z'}, 200)
	if n, err := c.Write(big); n != 98 || err != io.ErrShortWrite {
		t.Errorf("overlong Write = %d, %v", n, err)
	}
	if n, err := c.WriteAt([]byte("x"), 104); n != 0 || err != io.ErrShortWrite {
		t.Errorf("WriteAt past the end = %d, %v", n, err)
	}
	if _, err := c.ReadAt(hdr[:], -1); !errors.Is(err, virtio.ErrOffset) {
		t.Errorf("negative ReadAt offset: %v", err)
	}
	if err := q.AddUsed(c.Head(), c.Written()); err != nil {
		t.Fatal(err)
	}
	if id, n, ok := d.NextUsed(); !ok || id != uint32(head) || n != 104 {
		t.Errorf("used element = %d, %d, %v", id, n, ok)
	}
	if ok, err := q.Pop(c); ok || err != nil {
		t.Errorf("Pop on an empty ring = %v, %v", ok, err)
	}
}

func TestIndirectChain(t *testing.T) {
	mem, d, q := setup(t, 8, allFeat)
	in, out := d.Alloc(3), d.Alloc(8)
	mem.WriteAt([]byte("req"), in)
	// One direct readable descriptor chained to an indirect table.
	first := d.Alloc(2)
	mem.WriteAt([]byte(">>"), first)
	table := d.Alloc(32)
	d.SetDesc(table, 0, in, 3, virtio.DescFlagNext, 1)
	d.SetDesc(table, 1, out, 8, virtio.DescFlagWrite, 0)
	d.SetDesc(d.Desc, 0, first, 2, virtio.DescFlagNext, 5)
	d.SetDesc(d.Desc, 5, table, 32, virtio.DescFlagIndirect|virtio.DescFlagWrite, 0) // WRITE on the pointer is ignored
	d.Publish(0)
	c := q.NewChain()
	if ok, err := q.Pop(c); !ok || err != nil {
		t.Fatalf("Pop = %v, %v", ok, err)
	}
	got, _ := io.ReadAll(c)
	if string(got) != ">>req" || c.WritableLen() != 8 || c.Len() != 3 {
		t.Fatalf("read %q, writable %d, len %d", got, c.WritableLen(), c.Len())
	}
	c.Write([]byte("response"))
	if b := virtiotest.Bytes(t, mem, out, 8); string(b) != "response" {
		t.Errorf("wrote %q", b)
	}

	// The helper's layout: a table of three.
	h := d.WriteIndirect(d.Alloc(48),
		virtiotest.Buf{Addr: in, Len: 3}, virtiotest.Buf{Addr: out, Len: 4, Write: true}, virtiotest.Buf{Addr: out + 4, Len: 4, Write: true})
	d.Publish(h)
	if ok, err := q.Pop(c); !ok || err != nil || c.Head() != h || c.ReadableLen() != 3 || c.WritableLen() != 8 {
		t.Fatalf("Pop = %v, %v, head %d", ok, err, c.Head())
	}
}

func TestNeedEvent(t *testing.T) {
	for _, c := range []struct {
		ev, cur, old uint16
		want         bool
	}{
		{0, 1, 0, true},           // first element, driver wants one at 0
		{0, 2, 1, false},          // already past the event
		{5, 6, 0, true},           // crossed 5
		{5, 5, 0, false},          // not yet
		{5, 7, 6, false},          // crossed before
		{0xffff, 0, 0xfffe, true}, // wrap-around: crossed 0xffff to reach 0
		{0xffff, 3, 0xfff0, true},
		{2, 3, 0xfff0, true},       // window spans the wrap
		{0xfff0, 3, 0xfff5, false}, // event behind the window
		{7, 7, 7, false},           // nothing new
	} {
		if got := virtio.NeedEvent(c.ev, c.cur, c.old); got != c.want {
			t.Errorf("NeedEvent(ev=%#x, new=%#x, old=%#x) = %v, want %v", c.ev, c.cur, c.old, got, c.want)
		}
	}
}

func TestEventIdxNotifications(t *testing.T) {
	_, d, q := setup(t, 4, allFeat)
	c := q.NewChain()
	buf := d.Alloc(16)
	use := func() {
		t.Helper()
		d.AddChain(virtiotest.Buf{Addr: buf, Len: 16, Write: true})
		if ok, err := q.Next(c); !ok || err != nil {
			t.Fatalf("Next = %v, %v", ok, err)
		}
		if err := q.AddUsed(c.Head(), 1); err != nil {
			t.Fatal(err)
		}
	}
	// The driver wants an interrupt after the first used element (event 0).
	d.SetUsedEvent(0)
	use()
	if n, _ := q.NeedsNotify(); !n {
		t.Error("no notification for used_event 0")
	}
	if n, _ := q.NeedsNotify(); n {
		t.Error("notification with nothing new")
	}
	// used_event 0 is behind now: no more interrupts until it moves.
	use()
	if n, _ := q.NeedsNotify(); n {
		t.Error("notification although used_event was passed")
	}
	d.SetUsedEvent(3)
	use() // used idx 3, event 3 not crossed
	if n, _ := q.NeedsNotify(); n {
		t.Error("notification before crossing used_event 3")
	}
	use() // used idx 4 crosses 3
	if n, _ := q.NeedsNotify(); !n {
		t.Error("no notification after crossing used_event 3")
	}
	// Drive the 16-bit indices through a wrap-around.
	for i := 0; i < 70000; i++ {
		d.SetUsedEvent(q.State().NextUsed)
		use()
		if n, err := q.NeedsNotify(); !n || err != nil {
			t.Fatalf("iteration %d: NeedsNotify = %v, %v", i, n, err)
		}
		for {
			if _, _, ok := d.NextUsed(); !ok {
				break
			}
		}
	}
	// Empty ring: Next re-enables notifications by publishing avail_event.
	if ok, err := q.Next(c); ok || err != nil {
		t.Fatalf("Next on empty ring = %v, %v", ok, err)
	}
	if got, want := d.AvailEvent(), q.State().LastAvail; got != want {
		t.Errorf("avail_event = %d, want %d", got, want)
	}
}

func TestNoEventIdxNotifications(t *testing.T) {
	_, d, q := setup(t, 8, virtio.FeatureVersion1)
	c := q.NewChain()
	buf := d.Alloc(16)
	d.AddChain(virtiotest.Buf{Addr: buf, Len: 16, Write: true})
	d.AddChain(virtiotest.Buf{Addr: buf, Len: 16, Write: true})
	if ok, _ := q.Next(c); !ok {
		t.Fatal("no chain")
	}
	if d.UsedFlags()&virtio.UsedFlagNoNotify == 0 {
		t.Error("NO_NOTIFY not set while the device is busy")
	}
	q.AddUsed(c.Head(), 0)
	if n, _ := q.NeedsNotify(); !n {
		t.Error("no interrupt without NO_INTERRUPT")
	}
	d.SetAvailFlags(virtio.AvailFlagNoInterrupt)
	q.Next(c)
	q.AddUsed(c.Head(), 0)
	if n, _ := q.NeedsNotify(); n {
		t.Error("interrupt despite NO_INTERRUPT")
	}
	if ok, err := q.Next(c); ok || err != nil {
		t.Fatalf("Next on empty ring = %v, %v", ok, err)
	}
	if d.UsedFlags()&virtio.UsedFlagNoNotify != 0 {
		t.Error("NO_NOTIFY still set on an idle queue")
	}
	if d.UsedIdx() != 2 {
		t.Errorf("used idx %d, want 2", d.UsedIdx())
	}
	// A chain published between the empty check and re-enabling is found.
	d.AddChain(virtiotest.Buf{Addr: buf, Len: 16, Write: true})
	if more, err := q.EnableNotification(); !more || err != nil {
		t.Errorf("EnableNotification = %v, %v", more, err)
	}
}

func TestStateRestore(t *testing.T) {
	mem, d, q := setup(t, 8, allFeat)
	c := q.NewChain()
	buf := d.Alloc(8)
	for i := 0; i < 3; i++ {
		d.AddChain(virtiotest.Buf{Addr: buf, Len: 8, Write: true})
	}
	q.Pop(c)
	q.AddUsed(c.Head(), 0)
	q.Pop(c)
	s := q.State()
	q2, _ := virtio.NewQueue(256)
	if err := q2.Restore(mem, s); err != nil {
		t.Fatal(err)
	}
	if ok, err := q2.Pop(c); !ok || err != nil || c.Head() != 2 {
		t.Fatalf("restored Pop = %v, %v, head %d", ok, err, c.Head())
	}
	if s2 := q2.State(); s2.NextUsed != 1 || s2.LastAvail != 3 || !q2.EventIdx() {
		t.Errorf("restored state %+v", s2)
	}
}

// TestSteadyStateAllocs: popping, reading, writing and completing a
// request allocates nothing.
func TestSteadyStateAllocs(t *testing.T) {
	mem, d, q := setup(t, 64, allFeat)
	c := q.NewChain()
	in, out := d.Alloc(64), d.Alloc(64)
	table := d.Alloc(32)
	mem.WriteAt(bytes.Repeat([]byte{1}, 64), in)
	var scratch [64]byte
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if i%2 == 0 {
			d.AddChain(virtiotest.Buf{Addr: in, Len: 64}, virtiotest.Buf{Addr: out, Len: 64, Write: true})
		} else {
			d.Publish(d.WriteIndirect(table, virtiotest.Buf{Addr: in, Len: 64}, virtiotest.Buf{Addr: out, Len: 64, Write: true}))
		}
		i++
		ok, err := q.Next(c)
		if !ok || err != nil {
			t.Fatalf("Next = %v, %v", ok, err)
		}
		c.Read(scratch[:])
		c.Write(scratch[:])
		q.AddUsed(c.Head(), c.Written())
		q.NeedsNotify()
		d.NextUsed()
		q.Next(c)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
}

func TestUndoPop(t *testing.T) {
	_, d, q := setup(t, 8, allFeat)
	b := d.Alloc(8)
	h1 := d.AddChain(virtiotest.Buf{Addr: b, Len: 8, Write: true})
	h2 := d.AddChain(virtiotest.Buf{Addr: b, Len: 4, Write: true})
	c := q.NewChain()
	q.Pop(c)
	q.UndoPop()
	for _, want := range []uint16{h1, h2} {
		if ok, err := q.Pop(c); !ok || err != nil || c.Head() != want {
			t.Fatalf("Pop = %v, %v, head %d; want %d", ok, err, c.Head(), want)
		}
	}
	if ok, _ := q.Pop(c); ok {
		t.Error("a third chain")
	}
}
