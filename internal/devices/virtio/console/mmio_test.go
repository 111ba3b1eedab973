package console

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/mmio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

type edges struct{}

func (edges) Trigger() error { return nil }

// TestBehindMMIO brings a multiport device up through the virtio-mmio
// registers as Linux's virtio_console does (queue layout, max_nr_ports,
// control queues) and checks the first control exchange.
func TestBehindMMIO(t *testing.T) {
	mem := virtiotest.NewMemory(t, memSize)
	s1, s2 := listen(t, "a"), listen(t, "b")
	dev, err := New(Config{Channels: []Channel{{Name: "a", Socket: s1}, {Name: "b", Socket: s2}}})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := mmio.New(dev, mem, mmio.WithTrigger(edges{}), mmio.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
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
	if rd(0x008) != uint32(virtio.IDConsole) {
		t.Fatalf("device ID %d", rd(0x008))
	}
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver)
	wr(0x014, 0)
	if rd(0x010)&FeatureMultiport == 0 {
		t.Fatal("MULTIPORT not offered")
	}
	if got := rd(0x100 + configMaxPorts); got != 3 {
		t.Fatalf("max_nr_ports %d through the transport", got)
	}
	wr(0x024, 0)
	wr(0x020, FeatureMultiport)
	wr(0x024, 1)
	wr(0x020, 1) // VERSION_1
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK)
	for q, want := range map[uint32]uint32{0: DataQueueSize, 1: DataQueueSize, 2: ControlQueueSize, 3: ControlQueueSize, 4: DataQueueSize, 7: DataQueueSize, 8: 0} {
		wr(0x030, q)
		if got := rd(0x034); got != want {
			t.Errorf("queue %d maximum %d, want %d", q, got, want)
		}
	}
	var drv [4]*gq
	for _, q := range []int{ctrlRxQueue, ctrlTxQueue} {
		base := uint64(q) * regionSize
		d := &gq{Driver: virtiotest.NewDriver(t, mem, 16, base+0x100, base+regionSize), bufs: map[uint16]uint64{}}
		drv[q] = d
		cfg := d.Config()
		wr(0x030, uint32(q))
		wr(0x038, uint32(cfg.Size))
		wr(0x080, uint32(cfg.DescTable))
		wr(0x090, uint32(cfg.AvailRing))
		wr(0x0a0, uint32(cfg.UsedRing))
		wr(0x044, 1)
	}
	wr(0x070, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK|virtio.StatusDriverOK)
	if s := rd(0x070); s&virtio.StatusDeviceNeedsReset != 0 || s&virtio.StatusDriverOK == 0 {
		t.Fatalf("status %#x", s)
	}
	drv[ctrlRxQueue].post(4, 256)
	var b [ControlSize]byte
	Control{ID: badID, Event: EventDeviceReady, Value: 1}.Put(b[:])
	drv[ctrlTxQueue].send(b[:])
	wr(0x050, ctrlTxQueue)
	var got []Control
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 2 && time.Now().Before(deadline) {
		if m, ok := drv[ctrlRxQueue].taken(t); ok {
			c, _ := ParseControl(m)
			got = append(got, c)
		}
		time.Sleep(time.Millisecond)
	}
	if len(got) != 2 || got[0] != (Control{1, EventPortAdd, 1}) || got[1] != (Control{2, EventPortAdd, 1}) {
		t.Fatalf("after DEVICE_READY: %+v", got)
	}
	wr(0x070, 0)
	if rd(0x070) != 0 {
		t.Error("reset did not clear the status")
	}
}
