package guestmem

import (
	"errors"
	"testing"
)

func TestDirtyTrackingRecordsWrites(t *testing.T) {
	m, err := New([]RegionSpec{{GPA: 0, Size: 64 * PageSize}, {GPA: 1 << 20, Size: 128 * PageSize}}, Backing{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.WriteAt([]byte{1}, 0) // before tracking: not recorded
	if m.DirtyTracking() {
		t.Fatal("tracking before Start")
	}
	m.StartDirtyTracking()
	m.WriteAt(make([]byte, 10), 2*PageSize-5)    // pages 2 and 1
	m.PutUint16(1<<20+70*PageSize, 1)            // region 1 page 70
	m.Zero(1<<20+127*PageSize, PageSize)         // region 1 page 127
	m.MarkDirty(10*PageSize, 0)                  // empty: nothing
	m.MarkDirty(1<<30, PageSize)                 // outside RAM: ignored
	m.MarkDirty(63*PageSize, 2*PageSize)         // page 63, then the hole
	m.MarkDirty(^uint64(0)-PageSize, 2*PageSize) // wraps: ignored
	b0 := make([]uint64, BitmapWords(64*PageSize))
	b1 := make([]uint64, BitmapWords(128*PageSize))
	b1[0] = 1 // TakeDirty ORs
	if err := m.TakeDirty(0, b0); err != nil {
		t.Fatal(err)
	}
	if err := m.TakeDirty(1, b1); err != nil {
		t.Fatal(err)
	}
	if b0[0] != 1<<1|1<<2|1<<63 || b1[0] != 1 || b1[1]&(1<<63-1) != 1<<(70-64) {
		t.Fatalf("bitmaps %#x %#x", b0, b1)
	}
	if b1[1]>>63 != 1 {
		t.Fatalf("page 127 not recorded: %#x", b1[1])
	}
	clear(b0)
	m.TakeDirty(0, b0)
	if b0[0] != 0 {
		t.Fatalf("TakeDirty did not clear: %#x", b0)
	}
	if err := m.TakeDirty(2, b0); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("TakeDirty(2): %v", err)
	}
	if err := m.TakeDirty(1, b0[:0]); err == nil {
		t.Fatal("TakeDirty with a short bitmap succeeded")
	}
	m.StopDirtyTracking()
	m.WriteAt([]byte{1}, 0)
	if err := m.TakeDirty(0, b0); err != nil || b0[0] != 0 {
		t.Fatalf("after Stop: %v %#x", err, b0)
	}
}

func TestResidency(t *testing.T) {
	m, err := New([]RegionSpec{{GPA: 0, Size: 16 * PageSize}}, Backing{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.WriteAt([]byte{1}, 5*PageSize)
	vec := make([]byte, 16)
	if err := m.Residency(0, vec); err != nil {
		t.Fatal(err)
	}
	for i, v := range vec {
		if (v&1 != 0) != (i == 5) {
			t.Errorf("page %d residency %d", i, v)
		}
	}
	if err := m.Residency(1, vec); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("Residency(1): %v", err)
	}
	if err := m.Residency(0, vec[:3]); err == nil {
		t.Fatal("short vector accepted")
	}
}

// MarkDirty with tracking off must not cost an allocation.
func TestMarkDirtyOffDoesNotAllocate(t *testing.T) {
	m, err := New([]RegionSpec{{GPA: 0, Size: 16 * PageSize}}, Backing{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if n := testing.AllocsPerRun(100, func() { m.PutUint32(0, 1) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
	m.StartDirtyTracking()
	if n := testing.AllocsPerRun(100, func() { m.PutUint32(0, 1) }); n != 0 {
		t.Fatalf("%v allocations while tracking", n)
	}
}
