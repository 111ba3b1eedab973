package bus

import (
	"errors"
	"testing"
)

type recorder struct {
	lastOff uint64
	lastW   []byte
	val     byte
}

func (r *recorder) Read(off uint64, data []byte) {
	r.lastOff = off
	for i := range data {
		data[i] = r.val
	}
}

func (r *recorder) Write(off uint64, data []byte) {
	r.lastOff = off
	r.lastW = append(r.lastW[:0], data...)
}

func TestDispatch(t *testing.T) {
	var b Bus
	a, c := &recorder{val: 0xa}, &recorder{val: 0xc}
	if err := b.Insert(a, 0x3f8, 8); err != nil {
		t.Fatal(err)
	}
	if err := b.Insert(c, 0x60, 5); err != nil {
		t.Fatal(err)
	}
	if err := b.Insert(a, 0x3fc, 8); !errors.Is(err, ErrOverlap) {
		t.Errorf("overlap: %v", err)
	}
	if err := b.Insert(a, ^uint64(0)-2, 8); err == nil {
		t.Error("wrapping range accepted")
	}
	d := make([]byte, 1)
	if !b.Read(0x3fd, d) || d[0] != 0xa || a.lastOff != 5 {
		t.Errorf("read 0x3fd: %v off %d", d, a.lastOff)
	}
	if !b.Write(0x64, []byte{0xfe}) || c.lastOff != 4 || c.lastW[0] != 0xfe {
		t.Errorf("write 0x64: off %d data %v", c.lastOff, c.lastW)
	}
	if b.Read(0x400, d) || d[0] != 0xff {
		t.Errorf("unclaimed read returned %v", d)
	}
	if b.Write(0x5f, d) {
		t.Error("unclaimed write claimed")
	}
	if !b.Remove(0x60) || b.Write(0x64, d) {
		t.Error("remove did not unmap")
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	var b Bus
	for i := uint64(0); i < 16; i++ {
		b.Insert(&recorder{}, 0x1000*i, 0x100)
	}
	d := make([]byte, 4)
	n := testing.AllocsPerRun(1000, func() {
		b.Read(0x5010, d)
		b.Write(0x7004, d[:1])
	})
	// The recorder's append reuses its buffer after the first call.
	if n != 0 {
		t.Errorf("%v allocations per dispatch", n)
	}
}
