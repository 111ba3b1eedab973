package blk

import (
	"testing"

	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// benchServe measures serving one read of n bytes (header, n/4096 page
// descriptors, status) from a cached image, as the worker does it.
func benchServe(b *testing.B, n int) {
	dev, err := Open(Config{Path: newImage(b, pattern(4<<20, 1))}, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	mem := virtiotest.NewMemory(b, memSize)
	drv := virtiotest.NewDriver(b, mem, defaultQueueSize, 0x1000, memSize)
	q, _ := virtio.NewQueue(defaultQueueSize)
	if err := q.Configure(mem, drv.Config(), dev.Features()); err != nil {
		b.Fatal(err)
	}
	s := newQueueServer(dev, 0, q, &recorder{})
	hdr, data, status := drv.Alloc(16), drv.Alloc(uint64(n)), drv.Alloc(1)
	mem.WriteAt(header(typeIn, 64), hdr)
	bufs := []virtiotest.Buf{{Addr: hdr, Len: 16}}
	for off := 0; off < n; off += 4096 {
		bufs = append(bufs, virtiotest.Buf{Addr: data + uint64(off), Len: uint32(min(4096, n-off)), Write: true})
	}
	bufs = append(bufs, virtiotest.Buf{Addr: status, Len: 1, Write: true})
	b.SetBytes(int64(n))
	b.ResetTimer()
	for range b.N {
		drv.AddChain(bufs...)
		if _, err := s.handle(0); err != nil {
			b.Fatal(err)
		}
		drv.NextUsed()
	}
}

func BenchmarkServeRead4K(b *testing.B) { benchServe(b, 4096) }
func BenchmarkServeRead1M(b *testing.B) { benchServe(b, 1016<<10) }
