package vsock

import (
	"encoding/binary"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/mmio"
)

type edges struct{ n atomic.Int32 }

func (e *edges) Trigger() error { e.n.Add(1); return nil }

// TestBehindMMIO: the transport reports device ID 19, three queues of
// QueueSize and the CID in the configuration space; closing the transport
// removes the host socket.
func TestBehindMMIO(t *testing.T) {
	d, g := newDevice(t)
	tr, err := mmio.New(d, g.mem, mmio.WithTrigger(&edges{}), mmio.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	rd := func(off uint64) uint32 {
		var b [4]byte
		tr.Read(off, b[:])
		return binary.LittleEndian.Uint32(b[:])
	}
	wr := func(off uint64, v uint32) {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], v)
		tr.Write(off, b[:])
	}
	if rd(0x008) != uint32(virtio.IDVsock) {
		t.Fatalf("device ID %d", rd(0x008))
	}
	for q := range uint32(3) {
		wr(0x030, q)
		if rd(0x034) != QueueSize {
			t.Errorf("queue %d maximum %d", q, rd(0x034))
		}
	}
	wr(0x030, 3)
	if rd(0x034) != 0 {
		t.Error("a fourth queue")
	}
	if rd(0x100) != testCID || rd(0x104) != 0 {
		t.Errorf("config space %#x %#x", rd(0x100), rd(0x104))
	}
	wr(0x014, 0)
	if rd(0x010)&featureStream == 0 {
		t.Error("VIRTIO_VSOCK_F_STREAM not offered")
	}
	tr.Close()
	if d.Config().UDSPath == "" || exists(d.Config().UDSPath) {
		t.Error("host socket left after the transport closed")
	}
}
