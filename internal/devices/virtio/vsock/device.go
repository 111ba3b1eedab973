// Package vsock is the virtio socket device (virtio 1.2, section 5.10)
// with a Unix-socket backend compatible with Firecracker's hybrid vsock:
// host programs connect to a Unix socket and send "CONNECT <port>\n" to
// reach a guest listener; guest connections to the host (CID 2) port P go
// to the Unix socket PATH_P. One goroutine multiplexes the three queues
// and every host socket with epoll.
package vsock

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

const (
	// QueueSize is the maximum size of each of the three queues.
	QueueSize = 256
	// featureStream is VIRTIO_VSOCK_F_STREAM: stream sockets.
	featureStream = 1 << 0
	features      = virtio.FeatureVersion1 | virtio.FeatureEventIdx | virtio.FeatureIndirectDesc | featureStream
	// configSize is the configuration space: le64 guest_cid.
	configSize = 8
)

// Device is a virtio-vsock device. It implements virtio.Device and
// virtio.Snapshotter.
//
// The host socket is bound by New, so host programs can connect as soon
// as the VM exists; their connections reach the guest once its driver
// has started the device. Reset (a driver reset, the transport quiescing
// the device for a snapshot, or closing) drops every connection and
// closes the socket; the next Activate binds it again and, since the
// guest's connections are gone on the host side, sends the guest a
// TRANSPORT_RESET event (Firecracker does the same on snapshots).
type Device struct {
	mu     sync.Mutex // guards everything below
	cfg    Config
	lis    *listener
	mux    *muxer
	done   chan struct{} // closed when the muxer goroutine exits
	closed bool
	// resetDue: the next activation starts with a TRANSPORT_RESET event.
	// Set by every Reset after an activation, by Restore, and by a
	// TransportReset while inactive.
	resetDue bool
	ctr      counters // running totals over every activation
}

// New validates cfg and binds the host socket.
func New(cfg Config) (*Device, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lis, err := listen(cfg.UDSPath)
	if err != nil {
		return nil, err
	}
	return &Device{cfg: cfg, lis: lis}, nil
}

// Config returns the device's configuration.
func (d *Device) Config() Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Type is virtio.IDVsock.
func (d *Device) Type() virtio.DeviceID { return virtio.IDVsock }

// Features offers stream sockets and the ring features.
func (d *Device) Features() uint64 { return features }

// QueueMaxSizes are the rx, tx and event queues.
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{QueueSize, QueueSize, QueueSize} }

// ReadConfig reads the guest CID (le64 at offset 0); other bytes read as
// zero.
func (d *Device) ReadConfig(off uint64, data []byte) {
	d.mu.Lock()
	var cfg [configSize]byte
	binary.LittleEndian.PutUint64(cfg[:], d.cfg.CID)
	d.mu.Unlock()
	clear(data)
	if off < configSize {
		copy(data, cfg[off:])
	}
}

// WriteConfig ignores the write: the configuration space is read-only.
func (d *Device) WriteConfig(uint64, []byte) {}

// Activate starts the muxer goroutine on the driver's queues. The rx and
// tx queues must be ready; without an event queue no events are sent.
func (d *Device) Activate(ctx virtio.ActivateContext) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return ErrClosed
	case d.mux != nil:
		return virtio.ErrAlreadyActive
	case len(ctx.Queues) < numQueues || len(ctx.Notify) < numQueues:
		return fmt.Errorf("%w: vsock needs rx, tx and event queues", virtio.ErrMissingQueue)
	case !ctx.Queues[rxQueue].Ready() || !ctx.Queues[txQueue].Ready():
		return fmt.Errorf("%w: vsock rx or tx queue", virtio.ErrMissingQueue)
	}
	log := ctx.Log
	if log == nil {
		log = slog.Default()
	}
	if d.lis == nil {
		lis, err := listen(d.cfg.UDSPath)
		if err != nil {
			return err
		}
		d.lis = lis
	}
	m, err := newMuxer(d.cfg, d.lis, ctx, log)
	if err != nil {
		return err
	}
	m.ctr = &d.ctr
	if d.resetDue {
		m.resetEvent = true
		d.resetDue = false
	}
	d.mux = m
	d.done = make(chan struct{})
	go d.run(m, d.done, ctx.NeedsReset, log)
	return nil
}

// run is the muxer goroutine: a failure or a panic marks the device as
// needing a reset; the VMM carries on.
func (d *Device) run(m *muxer, done chan struct{}, failed func(error), log *slog.Logger) {
	defer close(done)
	defer func() {
		if r := recover(); r != nil {
			log.Error("virtio-vsock worker panicked; the device needs a reset", "panic", r, "stack", string(debug.Stack()))
			if failed != nil {
				failed(fmt.Errorf("%w: virtio-vsock: %v", virtio.ErrDevicePanic, r))
			}
		}
	}()
	if err := m.run(); err != nil {
		log.Warn("virtio-vsock stopped; the device needs a reset", "err", err)
		if failed != nil {
			failed(fmt.Errorf("virtio-vsock: %w", err))
		}
	}
}

// Reset stops the muxer, drops every connection and closes the host
// socket. It is safe to call when inactive and more than once.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
	if d.lis != nil {
		d.lis.close()
		d.lis = nil
	}
}

// stopLocked stops the muxer goroutine and releases its connections.
func (d *Device) stopLocked() {
	if d.mux == nil {
		return
	}
	d.resetDue = true
	d.mux.shutdown()
	<-d.done
	d.mux.close()
	d.mux, d.done = nil, nil
}

// Close resets the device for good: later activations fail.
func (d *Device) Close() error {
	d.Reset()
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	return nil
}

// TransportReset drops every connection and sends the guest a
// VIRTIO_VSOCK_EVENT_TRANSPORT_RESET event, as after a snapshot restore:
// the guest driver resets its sockets and reads the CID again. When the
// device is not active the event is sent on the next activation.
func (d *Device) TransportReset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mux == nil {
		d.resetDue = true
		return
	}
	m := d.mux
	m.mu.Lock()
	m.transportReset()
	m.mu.Unlock()
	m.wake.Signal()
}
