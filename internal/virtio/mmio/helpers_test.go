package mmio

import (
	"encoding/binary"
	"sync/atomic"
	"testing"

	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// fakeDevice records what the transport does to it.
type fakeDevice struct {
	t           testing.TB
	features    uint64
	sizes       []uint16
	config      [8]byte
	activateErr error
	activations int
	resets      int
	active      bool
	ctx         virtio.ActivateContext
}

func (d *fakeDevice) Type() virtio.DeviceID   { return virtio.IDRNG }
func (d *fakeDevice) Features() uint64        { return d.features }
func (d *fakeDevice) QueueMaxSizes() []uint16 { return d.sizes }
func (d *fakeDevice) ReadConfig(off uint64, data []byte) {
	for i := range data {
		data[i] = 0
		if off+uint64(i) < uint64(len(d.config)) {
			data[i] = d.config[off+uint64(i)]
		}
	}
}
func (d *fakeDevice) WriteConfig(off uint64, data []byte) {
	for i := range data {
		if off+uint64(i) < uint64(len(d.config)) {
			d.config[off+uint64(i)] = data[i]
		}
	}
}
func (d *fakeDevice) Activate(ctx virtio.ActivateContext) error {
	if d.active {
		d.t.Errorf("Activate on an active device")
		return virtio.ErrAlreadyActive
	}
	if d.activateErr != nil {
		return d.activateErr
	}
	d.activations++
	d.active = true
	d.ctx = ctx
	return nil
}
func (d *fakeDevice) Reset() {
	d.resets++
	d.active = false
}

// counter is an irq.Trigger that counts edges.
type counter struct{ n atomic.Int32 }

func (c *counter) Trigger() error { c.n.Add(1); return nil }

const testFeatures = virtio.FeatureVersion1 | virtio.FeatureEventIdx | virtio.FeatureIndirectDesc | 1<<3

func newTransport(t testing.TB) (*Transport, *fakeDevice, *counter) {
	t.Helper()
	dev := &fakeDevice{t: t, features: testFeatures, sizes: []uint16{16, 8}}
	irq := &counter{}
	mem := virtiotest.NewMemory(t, 1<<20)
	tr, err := New(dev, mem, WithTrigger(irq))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, dev, irq
}

func rd(tr *Transport, off uint64) uint32 {
	var b [4]byte
	tr.Read(off, b[:])
	return binary.LittleEndian.Uint32(b[:])
}

func wr(tr *Transport, off uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	tr.Write(off, b[:])
}

func wr64(tr *Transport, lo uint64, v uint64) {
	wr(tr, lo, uint32(v))
	wr(tr, lo+4, uint32(v>>32))
}

// negotiate runs the driver's feature negotiation and returns the status.
func negotiate(tr *Transport, features uint64) uint32 {
	wr(tr, regStatus, 0)
	wr(tr, regStatus, virtio.StatusAcknowledge)
	wr(tr, regStatus, virtio.StatusAcknowledge|virtio.StatusDriver)
	wr(tr, regDriverFeaturesSel, 0)
	wr(tr, regDriverFeatures, uint32(features))
	wr(tr, regDriverFeaturesSel, 1)
	wr(tr, regDriverFeatures, uint32(features>>32))
	wr(tr, regStatus, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK)
	return rd(tr, regStatus)
}

// setupQueue programs queue i as Linux does.
func setupQueue(tr *Transport, i uint32, size uint32, desc, avail, used uint64) {
	wr(tr, regQueueSel, i)
	wr(tr, regQueueNum, size)
	wr64(tr, regQueueDescLow, desc)
	wr64(tr, regQueueDriverLow, avail)
	wr64(tr, regQueueDeviceLow, used)
	wr(tr, regQueueReady, 1)
}

const driverOK = virtio.StatusAcknowledge | virtio.StatusDriver | virtio.StatusFeaturesOK | virtio.StatusDriverOK
