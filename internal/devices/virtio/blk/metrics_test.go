package blk

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/metrics"
)

// TestMetrics: every request kind is counted with its bytes; host I/O
// errors count as failed operations and malformed requests as invalid.
func TestMetrics(t *testing.T) {
	dev, err := Open(Config{Path: newImage(t, make([]byte, diskSize)), ID: "root"}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	sd := &scriptedDisk{backend: dev.disk}
	dev.disk = sd
	r := activate(t, dev, dev.Features())

	r.do(0, typeIn, 0, nil, 4*SectorSize)
	r.do(0, typeIn, 8, nil, 2*SectorSize)
	r.do(0, typeOut, 100, make([]byte, 3*SectorSize), 0)
	r.do(0, typeFlush, 0, nil, 0)
	r.do(0, typeDiscard, 0, append(seg(200, 8, 0), seg(300, 8, 0)...), 0)
	r.do(0, typeWriteZeroes, 0, seg(400, 16, 0), 0)
	r.do(0, typeIn, diskSize/SectorSize, nil, SectorSize) // beyond the end
	sd.mu.Lock()
	sd.fail = map[string]error{"read": unix.EIO, "write": unix.EIO, "flush": unix.EIO}
	sd.mu.Unlock()
	r.do(0, typeIn, 0, nil, SectorSize)
	r.do(0, typeOut, 0, make([]byte, SectorSize), 0)
	r.do(0, typeFlush, 0, nil, 0)

	got := dev.Metrics()
	for _, op := range []*metrics.BlockOp{&got.Read, &got.Write, &got.Flush, &got.Discard, &got.WriteZeroes} {
		if op.Ops > 0 && op.TimeNs == 0 {
			t.Errorf("%+v: no time recorded", *op)
		}
		op.TimeNs = 0
	}
	want := metrics.Block{
		ID:           "root",
		Read:         metrics.BlockOp{Ops: 2, Bytes: 6 * SectorSize, Failed: 1},
		Write:        metrics.BlockOp{Ops: 1, Bytes: 3 * SectorSize, Failed: 1},
		Flush:        metrics.BlockOp{Ops: 1, Failed: 1},
		Discard:      metrics.BlockOp{Ops: 1, Bytes: 16 * SectorSize},
		WriteZeroes:  metrics.BlockOp{Ops: 1, Bytes: 16 * SectorSize},
		Invalid:      1,
		HighestWrite: 416 * SectorSize,
	}
	if got != want {
		t.Errorf("Metrics() =\n%+v, want\n%+v", got, want)
	}
	// A driver reset keeps the counters.
	dev.Reset()
	if n := dev.Metrics().Read.Ops; n != 2 {
		t.Errorf("after a reset: %d reads, want 2", n)
	}
}
