package virtio_test

import (
	"testing"

	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// TestAvailEventKeepsNeighbour: avail_event is stored through its 32-bit
// word; the two guest bytes that share the word are left as they were.
func TestAvailEventKeepsNeighbour(t *testing.T) {
	mem, d, q := setup(t, 4, allFeat)
	after := d.Used + 4 + 8*4 + 2
	if after%4 != 2 {
		t.Fatalf("layout: avail_event at %#x is not the low half of its word", after-2)
	}
	mem.PutUint16(after, 0xbeef)
	b := d.Alloc(8)
	for i := 0; i < 3; i++ {
		d.AddChain(virtiotest.Buf{Addr: b, Len: 8})
	}
	c := q.NewChain()
	for ok, _ := q.Next(c); ok; ok, _ = q.Next(c) {
	}
	if got := d.AvailEvent(); got != 3 {
		t.Errorf("avail_event = %d, want 3", got)
	}
	if v, _ := mem.Uint16(after); v != 0xbeef {
		t.Errorf("neighbouring guest bytes changed to %#x", v)
	}
}

// TestAvailRingTwoModFour: the available ring needs only 2-byte alignment,
// which puts its index in the low half of a 32-bit word.
func TestAvailRingTwoModFour(t *testing.T) {
	mem := virtiotest.NewMemory(t, memSize)
	cfg := virtio.QueueConfig{Size: 4, DescTable: 0x1000, AvailRing: 0x2002, UsedRing: 0x3000}
	q, _ := virtio.NewQueue(4)
	if err := q.Configure(mem, cfg, allFeat); err != nil {
		t.Fatal(err)
	}
	mem.PutUint16(0x2000, 0x5555) // unrelated guest data before the ring
	d := virtiotest.NewDriver(t, mem, 4, 0x1000, memSize)
	d.SetDesc(d.Desc, 2, 0x8000, 16, virtio.DescFlagWrite, 0)
	mem.PutUint16(cfg.AvailRing+4, 2) // ring[0] = 2
	mem.PutUint16(cfg.AvailRing+2, 1) // idx = 1
	mem.PutUint16(cfg.AvailRing+4+2*4, 0)
	c := q.NewChain()
	if ok, err := q.Pop(c); !ok || err != nil || c.Head() != 2 || c.WritableLen() != 16 {
		t.Fatalf("Pop = %v, %v, head %d", ok, err, c.Head())
	}
	if err := q.AddUsed(c.Head(), 16); err != nil {
		t.Fatal(err)
	}
	if n, err := q.NeedsNotify(); !n || err != nil {
		t.Errorf("NeedsNotify = %v, %v", n, err)
	}
	if v, _ := mem.Uint16(0x2000); v != 0x5555 {
		t.Errorf("guest data before the ring changed to %#x", v)
	}
}
