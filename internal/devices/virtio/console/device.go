package console

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/metrics"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

// ringFeatures are the transport features the device uses.
const ringFeatures = virtio.FeatureVersion1 | virtio.FeatureEventIdx | virtio.FeatureIndirectDesc

// Device is a virtio console device. It implements virtio.Device.
type Device struct {
	cfg      Config
	features uint64  // offered
	ports    []*port // by port number; nil where no port exists
	socks    []*port // the channel ports, for polling their sockets
	cons     *consoleEnd
	config   [configSize]byte

	mu     sync.Mutex // guards worker and wake
	worker *worker
	wake   *hostos.EventFD // signalled by Enqueue while active

	// svc is held by the worker while it serves the device, and by
	// whoever changes or reads its state from outside (Activate, Reset,
	// State), so they see it between two passes.
	svc sync.Mutex

	// Owned by the worker between Activate and Reset.
	log       *slog.Logger
	multiport bool // VIRTIO_CONSOLE_F_MULTIPORT was negotiated
	queues    []*virtio.Queue
	irq       virtio.Interrupt
	ctrlRx    *virtio.Queue
	ctrlTx    *virtio.Queue
	ctrlChain *virtio.DescriptorChain
	rxChain   *virtio.DescriptorChain
	used      []bool // queues given used buffers since the last interrupt
	pfds      []unix.PollFd
	events    []*hostos.EventFD // the eventfds behind pfds[1:2+len(queues)]
	ctrlBuf   [ControlSize + MaxNameLen]byte
	timeout   unix.Timespec // the poll timeout, kept here to not allocate
	// The single-port console's input gate (gate.go).
	gateClosed bool
	lastTx     time.Time // last guest output while the gate is closed

	restored []PortState // port state for the next Activate (Restore); guarded by svc
	now      func() time.Time

	rxBytes, txBytes metrics.Counter // host to guest, guest to host
}

// New returns an inactive device for cfg.
func New(cfg Config) (*Device, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &Device{cfg: cfg, features: ringFeatures, log: slog.Default(), now: time.Now}
	n := 1
	if cfg.multiport() {
		d.features |= FeatureMultiport
		n += len(cfg.Channels)
	}
	d.ports = make([]*port, n)
	if cfg.Console != nil {
		d.cons = newConsoleEnd(cfg.Console.Output)
		d.ports[0] = &port{id: 0, console: true, end: d.cons}
	}
	for i, ch := range cfg.Channels {
		p := &port{id: i + 1, name: ch.Name, end: ch.Socket, sock: ch.Socket}
		d.ports[i+1] = p
		d.socks = append(d.socks, p)
	}
	binary.LittleEndian.PutUint32(d.config[configMaxPorts:], uint32(n))
	return d, nil
}

// Type is virtio.IDConsole.
func (d *Device) Type() virtio.DeviceID { return virtio.IDConsole }

// Features offers VERSION_1, EVENT_IDX, INDIRECT_DESC and, with channels,
// VIRTIO_CONSOLE_F_MULTIPORT.
func (d *Device) Features() uint64 { return d.features }

// QueueMaxSizes lists port 0's two queues and, for a multiport device,
// the two control queues and two queues per further port.
func (d *Device) QueueMaxSizes() []uint16 {
	if d.features&FeatureMultiport == 0 {
		return []uint16{DataQueueSize, DataQueueSize}
	}
	sizes := make([]uint16, 2*len(d.ports)+2)
	for i := range sizes {
		sizes[i] = DataQueueSize
	}
	sizes[ctrlRxQueue], sizes[ctrlTxQueue] = ControlQueueSize, ControlQueueSize
	return sizes
}

// ReadConfig reads struct virtio_console_config: cols and rows (zero: no
// size is offered), max_nr_ports and emerg_wr.
func (d *Device) ReadConfig(off uint64, data []byte) {
	for i := range data {
		if off < configSize && uint64(i) < configSize-off {
			data[i] = d.config[off+uint64(i)]
		} else {
			data[i] = 0
		}
	}
}

// WriteConfig ignores the write: emergency writes are not offered.
func (d *Device) WriteConfig(uint64, []byte) {}

// HasConsole reports whether port 0 is a console (Enqueue feeds it).
func (d *Device) HasConsole() bool { return d.cons != nil }

// Enqueue offers host input to the console port and returns how many
// bytes it took: fewer, even none, while earlier input still waits for
// the guest. The caller offers the rest again later, so nothing is lost.
// A device without a console takes nothing. Safe for concurrent use.
func (d *Device) Enqueue(p []byte) int {
	if d.cons == nil || len(p) == 0 {
		return 0
	}
	n := d.cons.enqueue(p)
	if n > 0 {
		d.mu.Lock()
		if d.wake != nil {
			d.wake.Signal()
		}
		d.mu.Unlock()
	}
	return n
}

// Activate starts the worker that serves the queues and sockets.
func (d *Device) Activate(ctx virtio.ActivateContext) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.worker != nil {
		return virtio.ErrAlreadyActive
	}
	nq := len(d.QueueMaxSizes())
	if len(ctx.Queues) < nq || len(ctx.Notify) < nq {
		return fmt.Errorf("%w: console: %d queues, want %d", virtio.ErrMissingQueue, len(ctx.Queues), nq)
	}
	multiport := ctx.Features&FeatureMultiport != 0
	if multiport && (!ctx.Queues[ctrlRxQueue].Ready() || !ctx.Queues[ctrlTxQueue].Ready()) {
		return fmt.Errorf("%w: console control queues", virtio.ErrMissingQueue)
	}
	if !multiport && d.ports[0] != nil && (!ctx.Queues[0].Ready() || !ctx.Queues[1].Ready()) {
		return fmt.Errorf("%w: console port 0", virtio.ErrMissingQueue)
	}
	log := ctx.Log
	if log == nil {
		log = slog.Default()
	}
	if !multiport && len(d.socks) > 0 {
		log.Warn("virtio-console: the guest driver did not accept multiport; channels are unavailable")
	}
	wake, err := hostos.NewEventFD()
	if err != nil {
		return fmt.Errorf("virtio-console: %w", err)
	}
	stop, err := hostos.NewEventFD()
	if err != nil {
		wake.Close()
		return fmt.Errorf("virtio-console: %w", err)
	}

	d.svc.Lock()
	err = d.start(ctx, log, multiport, wake)
	d.svc.Unlock()
	if err != nil {
		wake.Close()
		stop.Close()
		return fmt.Errorf("virtio-console: resuming saved state: %w", err)
	}

	w := &worker{stop: stop, done: make(chan struct{})}
	d.worker, d.wake = w, wake
	go d.run(w, ctx.NeedsReset)
	return nil
}

// start sets up the state of one activation; d.svc is held.
func (d *Device) start(ctx virtio.ActivateContext, log *slog.Logger, multiport bool, wake *hostos.EventFD) error {
	nq := len(d.QueueMaxSizes())
	d.log, d.multiport, d.irq = log, multiport, ctx.Interrupt
	d.queues = ctx.Queues[:nq]
	if d.cons != nil {
		d.cons.log = log
	}
	d.used = make([]bool, nq)
	d.rxChain = d.queues[0].NewChain()
	d.ctrlRx, d.ctrlTx, d.ctrlChain = nil, nil, nil
	if multiport {
		d.ctrlRx, d.ctrlTx = d.queues[ctrlRxQueue], d.queues[ctrlTxQueue]
		d.ctrlChain = d.ctrlRx.NewChain()
	}
	for _, p := range d.ports {
		if p == nil {
			continue
		}
		p.resetSession()
		if !multiport && p.id != 0 {
			continue
		}
		p.rxIdx, p.txIdx = rxQueue(p.id), txQueue(p.id)
		p.rx, p.tx = d.queues[p.rxIdx], d.queues[p.txIdx]
		p.txChain = p.tx.NewChain()
	}
	d.gateClosed, d.lastTx = false, time.Time{}
	if !multiport && d.ports[0] != nil {
		// A single-port device has no control queues: its port is a
		// console, ready from the start, and open once the gate opens.
		d.ports[0].ready, d.gateClosed = true, true
	}
	d.events = append(append(d.events[:0], wake), ctx.Notify[:nq]...)
	d.pfds = make([]unix.PollFd, 1+len(d.events)+2*len(d.socks))
	if d.restored != nil {
		return d.applyRestored()
	}
	return nil
}

// Reset stops the worker and forgets the guest driver's state. Sockets,
// their clients and staged bytes stay.
func (d *Device) Reset() {
	d.mu.Lock()
	w, wake := d.worker, d.wake
	d.worker, d.wake = nil, nil
	d.mu.Unlock()
	if w != nil {
		w.stop.Signal()
		<-w.done
		w.stop.Close()
	}
	if wake != nil {
		wake.Close()
	}
	d.svc.Lock()
	defer d.svc.Unlock()
	for _, p := range d.ports {
		if p != nil {
			p.resetSession()
		}
	}
	d.queues, d.irq, d.ctrlRx, d.ctrlTx = nil, nil, nil, nil
	d.events = d.events[:0]
}

// service does all the work that can be done now: control messages from
// the driver, each port's output and input, control messages to the
// driver, then the interrupts. d.svc is held.
func (d *Device) service() error {
	d.openGate()
	if d.multiport {
		if err := d.controlIn(); err != nil {
			return err
		}
	}
	for _, p := range d.ports {
		if p == nil {
			continue
		}
		if err := d.transmit(p); err != nil {
			return err
		}
		if err := d.receive(p); err != nil {
			return err
		}
	}
	if d.multiport {
		if err := d.controlOut(); err != nil {
			return err
		}
	}
	return d.interrupt()
}

// addUsed returns a buffer to the driver on queue qi.
func (d *Device) addUsed(qi int, head uint16, n uint32) error {
	d.used[qi] = true
	return d.queues[qi].AddUsed(head, n)
}

// interrupt signals the queues that were given used buffers.
func (d *Device) interrupt() error {
	for i, u := range d.used {
		if !u {
			continue
		}
		d.used[i] = false
		if err := d.irq.Used(d.queues[i]); err != nil {
			return err
		}
	}
	return nil
}
