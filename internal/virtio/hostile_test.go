package virtio_test

import (
	"errors"
	"io"
	"testing"

	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// TestHostileChains feeds malformed chains: each fails that request with
// an ErrBadChain error naming the cause, the chain reads and writes
// nothing, and the queue keeps working for the next, good chain.
func TestHostileChains(t *testing.T) {
	const n = 8
	for _, c := range []struct {
		name     string
		features uint64
		build    func(d *virtiotest.Driver) uint16 // writes descriptors, returns the head
		want     error
	}{
		{"self loop", allFeat, func(d *virtiotest.Driver) uint16 {
			d.SetDesc(d.Desc, 0, d.Alloc(8), 8, virtio.DescFlagNext, 0)
			return 0
		}, virtio.ErrChainTooLong},
		{"two-descriptor cycle", allFeat, func(d *virtiotest.Driver) uint16 {
			b := d.Alloc(8)
			d.SetDesc(d.Desc, 3, b, 8, virtio.DescFlagNext, 4)
			d.SetDesc(d.Desc, 4, b, 8, virtio.DescFlagNext, 3)
			return 3
		}, virtio.ErrChainTooLong},
		{"next outside the table", allFeat, func(d *virtiotest.Driver) uint16 {
			d.SetDesc(d.Desc, 0, d.Alloc(8), 8, virtio.DescFlagNext, n)
			return 0
		}, virtio.ErrDescIndex},
		{"buffer outside RAM", allFeat, func(d *virtiotest.Driver) uint16 {
			d.SetDesc(d.Desc, 0, memSize+0x1000, 8, 0, 0)
			return 0
		}, virtio.ErrDescRange},
		{"buffer crossing the end of RAM", allFeat, func(d *virtiotest.Driver) uint16 {
			d.SetDesc(d.Desc, 0, memSize-4, 8, virtio.DescFlagWrite, 0)
			return 0
		}, virtio.ErrDescRange},
		{"huge length", allFeat, func(d *virtiotest.Driver) uint16 {
			d.SetDesc(d.Desc, 0, 0x10000, 0xffffffff, virtio.DescFlagWrite, 0)
			return 0
		}, virtio.ErrDescRange},
		{"address that wraps", allFeat, func(d *virtiotest.Driver) uint16 {
			d.SetDesc(d.Desc, 0, ^uint64(0)-3, 16, 0, 0)
			return 0
		}, virtio.ErrDescRange},
		{"readable after writable", allFeat, func(d *virtiotest.Driver) uint16 {
			b := d.Alloc(16)
			d.SetDesc(d.Desc, 0, b, 8, virtio.DescFlagWrite|virtio.DescFlagNext, 1)
			d.SetDesc(d.Desc, 1, b+8, 8, 0, 0)
			return 0
		}, virtio.ErrDescOrder},
		{"indirect not negotiated", virtio.FeatureVersion1, func(d *virtiotest.Driver) uint16 {
			return d.WriteIndirect(d.Alloc(16), virtiotest.Buf{Addr: d.Alloc(8), Len: 8})
		}, virtio.ErrIndirect},
		{"indirect with NEXT", allFeat, func(d *virtiotest.Driver) uint16 {
			tb := d.Alloc(16)
			d.SetDesc(tb, 0, d.Alloc(8), 8, 0, 0)
			d.SetDesc(d.Desc, 0, tb, 16, virtio.DescFlagIndirect|virtio.DescFlagNext, 1)
			return 0
		}, virtio.ErrIndirect},
		{"indirect inside indirect", allFeat, func(d *virtiotest.Driver) uint16 {
			inner, outer := d.Alloc(16), d.Alloc(16)
			d.SetDesc(inner, 0, d.Alloc(8), 8, 0, 0)
			d.SetDesc(outer, 0, inner, 16, virtio.DescFlagIndirect, 0)
			d.SetDesc(d.Desc, 0, outer, 16, virtio.DescFlagIndirect, 0)
			return 0
		}, virtio.ErrIndirect},
		{"indirect table of length zero", allFeat, func(d *virtiotest.Driver) uint16 {
			d.SetDesc(d.Desc, 0, d.Alloc(16), 0, virtio.DescFlagIndirect, 0)
			return 0
		}, virtio.ErrIndirect},
		{"indirect table length not a multiple of 16", allFeat, func(d *virtiotest.Driver) uint16 {
			d.SetDesc(d.Desc, 0, d.Alloc(32), 24, virtio.DescFlagIndirect, 0)
			return 0
		}, virtio.ErrIndirect},
		{"indirect table outside RAM", allFeat, func(d *virtiotest.Driver) uint16 {
			d.SetDesc(d.Desc, 0, memSize-16, 32, virtio.DescFlagIndirect, 0)
			return 0
		}, virtio.ErrIndirect},
		{"huge indirect table", allFeat, func(d *virtiotest.Driver) uint16 {
			d.SetDesc(d.Desc, 0, 0, 0xfffffff0, virtio.DescFlagIndirect, 0)
			return 0
		}, virtio.ErrIndirect},
		{"loop inside an indirect table", allFeat, func(d *virtiotest.Driver) uint16 {
			tb, b := d.Alloc(32), d.Alloc(8)
			d.SetDesc(tb, 0, b, 8, virtio.DescFlagNext, 1)
			d.SetDesc(tb, 1, b, 8, virtio.DescFlagNext, 0)
			d.SetDesc(d.Desc, 0, tb, 32, virtio.DescFlagIndirect, 0)
			return 0
		}, virtio.ErrChainTooLong},
		{"next outside the indirect table", allFeat, func(d *virtiotest.Driver) uint16 {
			tb := d.Alloc(32)
			d.SetDesc(tb, 0, d.Alloc(8), 8, virtio.DescFlagNext, 2)
			d.SetDesc(d.Desc, 0, tb, 32, virtio.DescFlagIndirect, 0)
			return 0
		}, virtio.ErrDescIndex},
		{"indirect chain longer than the queue", allFeat, func(d *virtiotest.Driver) uint16 {
			const k = 3 * n
			tb, b := d.Alloc(16*k), d.Alloc(8)
			for i := uint16(0); i < k; i++ {
				d.SetDesc(tb, i, b, 8, virtio.DescFlagNext, i+1)
			}
			d.SetDesc(tb, k-1, b, 8, 0, 0)
			d.SetDesc(d.Desc, 0, tb, 16*k, virtio.DescFlagIndirect, 0)
			return 0
		}, virtio.ErrChainTooLong},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem, d, q := setup(t, n, c.features)
			head := c.build(d)
			d.Publish(head)
			ch := q.NewChain()
			ok, err := q.Pop(ch)
			if !ok || !errors.Is(err, virtio.ErrBadChain) || !errors.Is(err, c.want) {
				t.Fatalf("Pop = %v, %v; want a consumed chain and %v", ok, err, c.want)
			}
			if ch.Head() != head || ch.Len() != 0 || ch.ReadableLen() != 0 || ch.WritableLen() != 0 {
				t.Fatalf("failed chain: head %d len %d", ch.Head(), ch.Len())
			}
			if n, err := ch.Write([]byte{1}); n != 0 || err != io.ErrShortWrite {
				t.Fatalf("Write into a failed chain = %d, %v", n, err)
			}
			if err := q.AddUsed(ch.Head(), 0); err != nil {
				t.Fatal(err)
			}
			// The queue still serves a good chain.
			b := d.Alloc(4)
			mem.WriteAt([]byte("good"), b)
			d.SetDesc(d.Desc, 7, b, 4, 0, 0)
			d.Publish(7)
			if ok, err := q.Pop(ch); !ok || err != nil || ch.Head() != 7 || ch.ReadableLen() != 4 {
				t.Fatalf("good chain after a bad one: %v, %v", ok, err)
			}
		})
	}
}

func TestZeroLengthDescriptors(t *testing.T) {
	_, d, q := setup(t, 8, allFeat)
	// Zero-length buffers anywhere (even outside RAM) are harmless.
	d.AddChain(virtiotest.Buf{Addr: memSize * 4, Len: 0}, virtiotest.Buf{Addr: d.Alloc(4), Len: 4, Write: true}, virtiotest.Buf{Addr: 0, Len: 0, Write: true})
	c := q.NewChain()
	if ok, err := q.Pop(c); !ok || err != nil || c.Len() != 3 || c.WritableLen() != 4 {
		t.Fatalf("Pop = %v, %v, len %d", ok, err, c.Len())
	}
	if n, err := c.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Errorf("Read = %d, %v", n, err)
	}
	if n, err := c.Write([]byte("abcd")); n != 4 || err != nil {
		t.Errorf("Write = %d, %v", n, err)
	}
}

// TestHostileRing covers ring-level errors: they wrap ErrBadQueue.
func TestHostileRing(t *testing.T) {
	t.Run("available index far ahead", func(t *testing.T) {
		_, d, q := setup(t, 8, allFeat)
		d.SetAvailIdx(9)
		if ok, err := q.Pop(q.NewChain()); ok || !errors.Is(err, virtio.ErrBadQueue) || !errors.Is(err, virtio.ErrAvailIndex) {
			t.Fatalf("Pop = %v, %v", ok, err)
		}
		d.SetAvailIdx(0xffff) // "behind" is far ahead in 16-bit arithmetic
		if _, err := q.EnableNotification(); !errors.Is(err, virtio.ErrAvailIndex) {
			t.Fatalf("EnableNotification = %v", err)
		}
	})
	t.Run("available index exactly a queue ahead", func(t *testing.T) {
		_, d, q := setup(t, 8, allFeat)
		b := d.Alloc(8)
		for i := 0; i < 8; i++ {
			d.AddChain(virtiotest.Buf{Addr: b, Len: 8})
		}
		c := q.NewChain()
		for i := 0; i < 8; i++ {
			if ok, err := q.Pop(c); !ok || err != nil {
				t.Fatalf("Pop %d = %v, %v", i, ok, err)
			}
		}
	})
	t.Run("head outside the queue", func(t *testing.T) {
		_, d, q := setup(t, 8, allFeat)
		d.Publish(8)
		if ok, err := q.Pop(q.NewChain()); ok || !errors.Is(err, virtio.ErrBadQueue) || !errors.Is(err, virtio.ErrHeadIndex) {
			t.Fatalf("Pop = %v, %v", ok, err)
		}
	})
	t.Run("used head outside the queue", func(t *testing.T) {
		_, _, q := setup(t, 8, allFeat)
		if err := q.AddUsed(8, 0); !errors.Is(err, virtio.ErrUsedHead) {
			t.Fatalf("AddUsed = %v", err)
		}
	})
}
