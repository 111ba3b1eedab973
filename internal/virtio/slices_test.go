package virtio_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// TestChainSlices checks the zero-copy view of a chain: ranges that span
// descriptors, zero-length descriptors, bounds, and that the slices alias
// guest memory.
func TestChainSlices(t *testing.T) {
	mem, d, q := setup(t, 16, allFeat)
	a, b, c, w1, w2 := d.Alloc(16), d.Alloc(8), d.Alloc(4), d.Alloc(6), d.Alloc(2)
	if err := mem.WriteAt([]byte("0123456789abcdef"), a); err != nil {
		t.Fatal(err)
	}
	if err := mem.WriteAt([]byte("ghijklmn"), b); err != nil {
		t.Fatal(err)
	}
	if err := mem.WriteAt([]byte("opqr"), c); err != nil {
		t.Fatal(err)
	}
	d.AddChain(
		virtiotest.Buf{Addr: a, Len: 16}, virtiotest.Buf{Addr: d.Alloc(1), Len: 0},
		virtiotest.Buf{Addr: b, Len: 8}, virtiotest.Buf{Addr: c, Len: 4},
		virtiotest.Buf{Addr: w1, Len: 6, Write: true}, virtiotest.Buf{Addr: w2, Len: 2, Write: true},
	)
	ch := q.NewChain()
	if ok, err := q.Pop(ch); !ok || err != nil {
		t.Fatalf("Pop = %v, %v", ok, err)
	}
	join := func(s [][]byte) string { return string(bytes.Join(s, []byte("|"))) }

	buf := make([][]byte, 0, 8)
	for _, tc := range []struct {
		off, n uint64
		want   string
	}{
		{0, 28, "0123456789abcdef|ghijklmn|opqr"},
		{10, 10, "abcdef|ghij"},
		{16, 8, "ghijklmn"},
		{27, 1, "r"},
		{28, 0, ""},
		{5, 0, ""},
	} {
		got, err := ch.ReadableSlices(buf[:0], tc.off, tc.n)
		if err != nil || join(got) != tc.want {
			t.Errorf("ReadableSlices(%d, %d) = %q, %v; want %q", tc.off, tc.n, join(got), err, tc.want)
		}
	}
	for _, tc := range []struct{ off, n uint64 }{{0, 29}, {28, 1}, {29, 0}, {1 << 63, 1 << 63}, {^uint64(0), 2}} {
		got, err := ch.ReadableSlices(buf[:1], tc.off, tc.n)
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 1 {
			t.Errorf("ReadableSlices(%d, %d) = %d slices, %v; want dst unchanged and ErrUnexpectedEOF", tc.off, tc.n, len(got), err)
		}
	}

	// Writable slices alias the guest buffers and leave Written alone.
	ws, err := ch.WritableSlices(buf[:0], 4, 4)
	if err != nil || len(ws) != 2 || len(ws[0]) != 2 || len(ws[1]) != 2 {
		t.Fatalf("WritableSlices(4, 4) = %d slices, %v", len(ws), err)
	}
	copy(ws[0], "WX")
	copy(ws[1], "YZ")
	if got := virtiotest.Bytes(t, mem, w1, 6); string(got[4:]) != "WX" {
		t.Errorf("first writable buffer %q", got)
	}
	if got := virtiotest.Bytes(t, mem, w2, 2); string(got) != "YZ" {
		t.Errorf("second writable buffer %q", got)
	}
	if ch.Written() != 0 {
		t.Errorf("Written = %d after writing through slices, want 0", ch.Written())
	}
	if _, err := ch.WritableSlices(nil, 0, 9); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("WritableSlices past the end: %v", err)
	}

	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ch.ReadableSlices(buf[:0], 3, 20); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per ReadableSlices, want 0", allocs)
	}

	// A malformed chain has no parts at all.
	d.SetDesc(d.Desc, 8, a, 16, virtio.DescFlagNext, 8)
	d.Publish(8)
	if _, err := q.Pop(ch); !errors.Is(err, virtio.ErrBadChain) {
		t.Fatalf("looping chain: %v", err)
	}
	if _, err := ch.ReadableSlices(nil, 0, 1); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("slices of a malformed chain: %v", err)
	}
}
