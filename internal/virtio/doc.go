// Package virtio implements the transport-independent half of virtio 1.x
// devices: the split virtqueue, descriptor chains exposed as io.Reader and
// io.Writer, feature and status bits, the Device interface that transports
// (virtio-mmio, later virtio-pci) drive, and a worker helper that serves a
// device's queues on its own goroutine.
//
// Everything in a virtqueue is written by the guest and may be hostile. The
// queue reads guest memory only through guestmem's bounds-checked accessors,
// copies each descriptor once before validating it, bounds every walk by the
// queue size, and reports malformed input as errors: a bad chain fails that
// request (errors wrapping ErrBadChain), a broken ring makes the device need
// a reset (errors wrapping ErrBadQueue). Nothing here panics on guest input.
//
// Ring indices and event fields are 16-bit values shared with the guest.
// Go has no 16-bit atomics, so they are loaded and stored through the
// naturally aligned 32-bit word that contains them (ring_unsafe.go); those
// atomic operations also order the ring accesses around them.
package virtio
