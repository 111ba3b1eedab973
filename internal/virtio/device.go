package virtio

import (
	"log/slog"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/hostos"
)

// Device is a virtio device type (rng, block, net, ...) independent of the
// transport that exposes it to the guest. A transport calls ReadConfig and
// WriteConfig from vCPU goroutines, Activate once the driver has set
// DRIVER_OK, and Reset when the driver resets the device or the VM ends;
// it never calls two of these at the same time.
type Device interface {
	// Type is the virtio device ID.
	Type() DeviceID
	// Features are the feature bits the device offers, including the ring
	// features it can use (VERSION_1, EVENT_IDX, INDIRECT_DESC).
	Features() uint64
	// QueueMaxSizes has one entry per queue: its maximum size, a power of
	// two.
	QueueMaxSizes() []uint16
	// ReadConfig fills data from the device configuration space at off.
	// Bytes beyond the configuration space read as zero; it must not panic
	// for any off and len(data).
	ReadConfig(off uint64, data []byte)
	// WriteConfig writes the device configuration space at off; writes to
	// read-only or absent bytes are ignored.
	WriteConfig(off uint64, data []byte)
	// Activate starts the device with the driver's negotiated features and
	// configured queues. The device owns the queues until Reset.
	Activate(ctx ActivateContext) error
	// Reset stops the device's workers, waiting for them to exit, and
	// forgets the queues. It must be safe to call when not active and to
	// call twice.
	Reset()
}

// Interrupt is how a device signals the driver; the transport implements
// it (virtio-mmio: the interrupt status register and an irqfd; virtio-pci:
// MSI-X vectors).
type Interrupt interface {
	// Used signals used buffers on q, if the driver wants a notification
	// for the elements added since the last call (see Queue.NeedsNotify).
	Used(q *Queue) error
	// ConfigChanged signals a change of the device configuration space.
	ConfigChanged() error
}

// ActivateContext is everything a device gets when the driver starts it.
type ActivateContext struct {
	// Mem is guest RAM; queues and buffers are reached only through it.
	Mem *guestmem.Memory
	// Features are the negotiated feature bits.
	Features uint64
	// Queues has one entry per QueueMaxSizes entry; queues the driver did
	// not set up have Ready() == false.
	Queues []*Queue
	// Notify has one eventfd per queue, signalled when the driver notifies
	// that queue (through an ioeventfd or the transport's register).
	Notify []*hostos.EventFD
	// Interrupt signals used buffers and configuration changes.
	Interrupt Interrupt
	// NeedsReset marks the device broken: the transport sets
	// DEVICE_NEEDS_RESET and raises a configuration interrupt. The device
	// calls it (or lets a Worker call it) when it must stop serving.
	NeedsReset func(error)
	// Log receives the device's diagnostics.
	Log *slog.Logger
}
