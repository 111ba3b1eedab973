package blk

import (
	"errors"
	"math/rand"
	"os"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// TestHostileGuest plays a guest that aims the device at its own rings
// and descriptors, overlaps buffers, and finally throws random
// descriptor tables at a running worker. The device never panics, never
// touches the file outside the disk, and either keeps serving or asks
// for a reset.
func TestHostileGuest(t *testing.T) {
	img := pattern(diskSize, 8)
	r := newRig(t, Config{Path: newImage(t, img)})
	q := r.qs[0]

	// Read disk data over the descriptor table and the available ring:
	// the chain was copied before the read, so the request completes.
	r.write(q.hdr, header(typeIn, 0))
	r.chain(0, virtiotest.Buf{Addr: q.hdr, Len: 16}, virtiotest.Buf{Addr: q.drv.Desc, Len: 4096, Write: true},
		virtiotest.Buf{Addr: q.status, Len: 1, Write: true})
	// The ring now holds disk bytes: the device either finds a broken
	// ring (reset) or garbage requests (failed one by one).
	q.drv.SetAvailIdx(1)
	q.notify.Signal()
	time.Sleep(50 * time.Millisecond)
	if err := r.rec.Failure(); errors.Is(err, virtio.ErrDevicePanic) {
		t.Fatalf("device panicked: %v", err)
	}

	// Fresh rings for the next cases.
	r.dev.Reset()
	r = activate(t, r.dev, r.dev.Features())
	q = r.qs[0]
	// Header, data and status in one buffer that is both read and
	// written: a write request whose status lands in its own data.
	buf := q.drv.Alloc(16 + SectorSize)
	r.write(buf, header(typeOut, 5))
	r.chain(0, virtiotest.Buf{Addr: buf, Len: 16 + SectorSize}, virtiotest.Buf{Addr: buf + 16 + SectorSize - 1, Len: 1, Write: true})
	// A read whose data buffer is its own header.
	r.write(buf, header(typeIn, 6))
	r.chain(0, virtiotest.Buf{Addr: buf, Len: 16}, virtiotest.Buf{Addr: buf, Len: SectorSize, Write: true}, virtiotest.Buf{Addr: buf, Len: 1, Write: true})
	if res := r.do(0, typeIn, 0, nil, SectorSize); res.status != statusOK {
		t.Fatalf("good request after overlapping ones: status %d", res.status)
	}

	// Random descriptor tables against the live worker.
	rng := rand.New(rand.NewSource(1))
	resets := 0
	for round := range 300 {
		if r.rec.Failure() != nil {
			if errors.Is(r.rec.Failure(), virtio.ErrDevicePanic) {
				t.Fatalf("round %d: device panicked: %v", round, r.rec.Failure())
			}
			resets++
			r.dev.Reset()
			r = activate(t, r.dev, r.dev.Features())
			q = r.qs[0]
		}
		for i := range uint16(queueSize) {
			addr := uint64(rng.Intn(memSize))
			if rng.Intn(8) == 0 {
				addr = rng.Uint64()
			}
			flags := uint16(rng.Intn(8))
			q.drv.SetDesc(q.drv.Desc, i, addr, uint32(rng.Intn(3*SectorSize)), flags, uint16(rng.Intn(queueSize+2)))
		}
		// Buffers full of plausible headers.
		for range 8 {
			a := uint64(rng.Intn(memSize - 64))
			r.write(a, header([]uint32{typeIn, typeOut, typeDiscard, typeWriteZeroes, typeGetID}[rng.Intn(5)], uint64(rng.Intn(4096))))
		}
		for range 1 + rng.Intn(4) {
			q.drv.Publish(uint16(rng.Intn(queueSize + 1)))
		}
		q.notify.Signal()
		deadline := time.Now().Add(5 * time.Second)
		for q.drv.UsedIdx() != availIdx(t, r, q) && r.rec.Failure() == nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	t.Logf("%d resets in 300 rounds", resets)
	if st, err := os.Stat(r.path); err != nil || st.Size() != diskSize {
		t.Fatalf("disk size changed: %v", err)
	}
}

func availIdx(t *testing.T, r *rig, q *queueRig) uint16 {
	v, err := r.mem.Uint16(q.drv.Avail + 2)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
