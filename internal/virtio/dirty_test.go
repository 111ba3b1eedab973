package virtio_test

import (
	"testing"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// TestUsedMarksDeviceWrites: while guest memory tracks device writes
// (live migration), a chain returned with AddUsed has its whole
// device-writable part recorded, however the device filled it (here
// through WritableSlices, which guestmem cannot see), and so do the
// used ring's stores; the device-readable part is not recorded.
func TestUsedMarksDeviceWrites(t *testing.T) {
	mem, d, q := setup(t, 16, allFeat)
	rd := d.Alloc(guestmem.PageSize)
	wr := d.Alloc(3 * guestmem.PageSize)
	d.AddChain(virtiotest.Buf{Addr: rd, Len: 100}, virtiotest.Buf{Addr: wr, Len: 2*guestmem.PageSize + 1, Write: true})
	mem.StartDirtyTracking()
	c := q.NewChain()
	if ok, err := q.Next(c); !ok || err != nil {
		t.Fatalf("Next: %v %v", ok, err)
	}
	bufs, err := c.WritableSlices(nil, 0, c.WritableLen())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bufs {
		b[len(b)-1] = 0xaa // written in place: invisible to guestmem
	}
	if err := q.AddUsed(c.Head(), uint32(c.WritableLen())); err != nil {
		t.Fatal(err)
	}
	bm := make([]uint64, guestmem.BitmapWords(mem.Size()))
	if err := mem.TakeDirty(0, bm); err != nil {
		t.Fatal(err)
	}
	dirty := func(gpa uint64) bool { p := gpa / guestmem.PageSize; return bm[p/64]&(1<<(p%64)) != 0 }
	for _, gpa := range []uint64{wr, wr + guestmem.PageSize, wr + 2*guestmem.PageSize, d.Config().UsedRing} {
		if !dirty(gpa) {
			t.Errorf("page at %#x not recorded", gpa)
		}
	}
	if dirty(rd) {
		t.Errorf("device-readable page at %#x recorded", rd)
	}
	if dirty(wr + 3*guestmem.PageSize) {
		t.Errorf("page after the chain recorded")
	}
}

// The used-ring path stays allocation-free while tracking (after the
// first chain, which allocates the queue's scratch chain once).
func TestUsedTrackingDoesNotAllocate(t *testing.T) {
	mem, d, q := setup(t, 16, allFeat)
	buf := d.Alloc(64)
	mem.StartDirtyTracking()
	c := q.NewChain()
	round := func() {
		d.AddChain(virtiotest.Buf{Addr: buf, Len: 64, Write: true})
		q.Next(c)
		c.Write([]byte("hello"))
		q.AddUsed(c.Head(), c.Written())
		q.NeedsNotify()
	}
	round()
	if n := testing.AllocsPerRun(100, round); n != 0 {
		t.Fatalf("%v allocations per request while tracking", n)
	}
}
