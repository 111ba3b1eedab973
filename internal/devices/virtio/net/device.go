// Package net is the virtio network device (virtio 1.2, section 5.1) over
// a host TAP interface: one receive/transmit queue pair per TAP queue,
// served by one worker goroutine each, plus a control queue for the
// multiqueue and receive-offload commands.
//
// Packets cross the TAP with the virtio-net header in front (IFF_VNET_HDR,
// 12 bytes), so checksum and segmentation offloads pass between the guest
// and the host kernel untouched: transmitted headers are validated against
// the negotiated features and handed to the kernel, received ones are
// checked against what the driver accepts. Receive buffers may be merged
// (VIRTIO_NET_F_MRG_RXBUF), and TCP segments waiting in the TAP back to
// back are coalesced into one GSO packet for a driver that accepts TSO
// (merge.go). Nothing on the packet path allocates.
package net

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

// QueueSize is the maximum size of every queue.
const QueueSize = 256

// ringFeatures are the virtqueue features the device uses.
const ringFeatures = virtio.FeatureVersion1 | virtio.FeatureEventIdx | virtio.FeatureIndirectDesc

// baseFeatures are offered by every device; MTU and MQ depend on the
// configuration.
const baseFeatures = ringFeatures | FeatureCSUM | FeatureGuestCSUM | FeatureCtrlGuestOffloads |
	FeatureMAC | FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureHostTSO4 | FeatureHostTSO6 |
	FeatureMrgRxbuf | FeatureStatus | FeatureCtrlVQ

// Link status bits of the configuration space.
const statusLinkUp = 1 // VIRTIO_NET_S_LINK_UP

// Errors of the device.
var (
	ErrBackend = errors.New("net: backend")
	ErrClosed  = errors.New("net: device is closed")
	ErrState   = errors.New("net: saved state does not match this device")
)

// Backend is the host side of the device: one non-blocking packet
// descriptor per queue pair, each packet preceded by a virtio-net header.
// *hostos.Tap implements it.
type Backend interface {
	// Name identifies the backend (the TAP interface name).
	Name() string
	// Queues is the number of packet descriptors.
	Queues() int
	// FD returns queue i's descriptor.
	FD(i int) int
	// SetVnetHdrSize sets the header length in front of packets.
	SetVnetHdrSize(n int) error
	// SetOffload sets the hostos.TapOffload* shapes the host may deliver.
	SetOffload(flags uint) error
	// SetQueueEnabled attaches or detaches queue i (multi-queue only).
	SetQueueEnabled(i int, on bool) error
	// Close releases the backend.
	Close() error
}

// Device is a virtio-net device. It implements virtio.Device.
type Device struct {
	cfg     Config
	tap     Backend
	offered uint64
	linkUp  atomic.Bool
	stats   []counters // one per queue pair, for the device's lifetime

	// What the driver set through the control queue, kept across a Reset
	// that only quiesces the device (the queues keep their positions) and
	// restored from snapshots; 0/false: never set.
	pairsSet    int
	offloadsSet bool

	mu       sync.Mutex // guards the fields below and serialises SetLink
	closed   bool
	log      *slog.Logger
	irq      virtio.Interrupt
	features uint64 // negotiated; 0 while inactive
	pairs    []*pair
	ctrl     *ctrlQueue
	worker   *virtio.Worker // serves the control queue
	ctrlCfg  virtio.WorkerConfig

	// Shared with the workers while active.
	activePairs atomic.Int32  // queue pairs the driver enabled
	offloads    atomic.Uint64 // receive offloads the driver accepts now
}

// New returns an inactive device over tap, which it owns from now on
// (Close closes it). cfg is normalized first.
func New(cfg Config, tap Backend) (*Device, error) {
	cfg, err := cfg.Normalized()
	if err != nil {
		return nil, err
	}
	if tap.Queues() < cfg.Queues {
		return nil, fmt.Errorf("%w %s: %d queues for %d queue pairs", ErrBackend, tap.Name(), tap.Queues(), cfg.Queues)
	}
	if err := tap.SetVnetHdrSize(hdrLen); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrBackend, tap.Name(), err)
	}
	if err := tap.SetOffload(0); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrBackend, tap.Name(), err)
	}
	d := &Device{cfg: cfg, tap: tap, offered: baseFeatures, stats: make([]counters, cfg.Queues), log: slog.Default()}
	if cfg.MTU != 0 {
		d.offered |= FeatureMTU
	}
	if cfg.Queues > 1 {
		d.offered |= FeatureMQ
	}
	d.linkUp.Store(true)
	return d, nil
}

// Open opens (or creates) the TAP of cfg and returns a device over it.
func Open(cfg Config) (*Device, error) {
	cfg, err := cfg.Normalized()
	if err != nil {
		return nil, err
	}
	tap, err := hostos.OpenTap(cfg.Tap, cfg.Queues)
	if err != nil {
		return nil, fmt.Errorf("net %s: %w", cfg.ID, err)
	}
	d, err := New(cfg, tap)
	if err != nil {
		tap.Close()
		return nil, err
	}
	return d, nil
}

// Config returns the normalized configuration.
func (d *Device) Config() Config { return d.cfg }

// Type is virtio.IDNet.
func (d *Device) Type() virtio.DeviceID { return virtio.IDNet }

// Features are the offered feature bits.
func (d *Device) Features() uint64 { return d.offered }

// QueueMaxSizes lists receiveq1, transmitq1, ..., receiveqN, transmitqN
// and the control queue.
func (d *Device) QueueMaxSizes() []uint16 {
	s := make([]uint16, 2*d.cfg.Queues+1)
	for i := range s {
		s[i] = QueueSize
	}
	return s
}

// Configuration space layout (struct virtio_net_config).
const (
	cfgMAC      = 0
	cfgStatus   = 6
	cfgMaxPairs = 8
	cfgMTU      = 10
	cfgSize     = 12
)

// ReadConfig reads the configuration space: the MAC, the link status,
// the number of queue pairs and the MTU. Other bytes read as zero.
func (d *Device) ReadConfig(off uint64, data []byte) {
	var c [cfgSize]byte
	copy(c[cfgMAC:], d.cfg.MAC[:])
	if d.linkUp.Load() {
		c[cfgStatus] = statusLinkUp
	}
	c[cfgMaxPairs] = byte(d.cfg.Queues)
	c[cfgMaxPairs+1] = byte(d.cfg.Queues >> 8)
	c[cfgMTU] = byte(d.cfg.MTU)
	c[cfgMTU+1] = byte(d.cfg.MTU >> 8)
	clear(data)
	if off < cfgSize {
		copy(data, c[off:])
	}
}

// WriteConfig ignores the write: with VIRTIO_F_VERSION_1 every field is
// read-only for the driver.
func (d *Device) WriteConfig(uint64, []byte) {}

// SetLink reports the link up or down to the driver (the status field
// and, when negotiated, a configuration-change interrupt).
func (d *Device) SetLink(up bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.linkUp.Swap(up) == up || d.irq == nil || d.features&FeatureStatus == 0 {
		return nil
	}
	return d.irq.ConfigChanged()
}

// LinkUp reports the link status shown to the driver.
func (d *Device) LinkUp() bool { return d.linkUp.Load() }

// Activate starts one worker per queue pair the driver negotiated and one
// for the control queue.
func (d *Device) Activate(ctx virtio.ActivateContext) (err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return ErrClosed
	case d.features != 0 || d.pairs != nil:
		return virtio.ErrAlreadyActive
	}
	f := ctx.Features
	nPairs, ctrlIdx := 1, 2
	if f&FeatureMQ != 0 && f&FeatureCtrlVQ != 0 {
		nPairs, ctrlIdx = d.cfg.Queues, 2*d.cfg.Queues
	}
	if len(ctx.Queues) < 2*d.cfg.Queues+1 || len(ctx.Notify) < len(ctx.Queues) {
		return fmt.Errorf("%w: net: %d queues", virtio.ErrMissingQueue, len(ctx.Queues))
	}
	for i := range 2 * nPairs {
		if !ctx.Queues[i].Ready() {
			return fmt.Errorf("%w: net queue %d", virtio.ErrMissingQueue, i)
		}
	}
	if ctx.Log != nil {
		d.log = ctx.Log
	}
	d.irq = ctx.Interrupt
	d.features = f
	defer func() {
		if err != nil {
			d.stopLocked()
		}
	}()

	active, offloads := 1, f&guestOffloads
	if f&FeatureCtrlVQ != 0 && ctx.Queues[ctrlIdx].Ready() && ctx.Queues[ctrlIdx].State().NextUsed != 0 {
		// The control queue has answered commands before: this is the
		// same driver session resuming (after a quiesce or a restore).
		if d.pairsSet != 0 {
			active = min(d.pairsSet, nPairs)
		}
		if d.offloadsSet {
			offloads = d.offloads.Load() & f & guestOffloads
		}
	} else {
		d.pairsSet, d.offloadsSet = 0, false
	}
	d.offloads.Store(offloads)
	if err := d.tap.SetOffload(tapOffloads(offloads)); err != nil {
		return fmt.Errorf("%w %s: %w", ErrBackend, d.tap.Name(), err)
	}
	if err := d.enablePairs(active); err != nil {
		return err
	}
	for i := range nPairs {
		p, err := d.newPair(i, ctx)
		if err != nil {
			return err
		}
		d.pairs = append(d.pairs, p)
	}
	if f&FeatureCtrlVQ != 0 && ctx.Queues[ctrlIdx].Ready() {
		d.ctrl = &ctrlQueue{dev: d, q: ctx.Queues[ctrlIdx], chain: ctx.Queues[ctrlIdx].NewChain(), irq: ctx.Interrupt, maxPairs: nPairs, features: f}
		d.ctrlCfg = virtio.WorkerConfig{
			Name:   "virtio-net-ctrl",
			Events: ctx.Notify[ctrlIdx : ctrlIdx+1],
			Handle: d.ctrl.handle,
			Failed: ctx.NeedsReset,
			Log:    d.log,
		}
		w, err := virtio.StartWorker(d.ctrlCfg)
		if err != nil {
			return err
		}
		d.worker = w
		ctx.Notify[ctrlIdx].Signal()
	}
	for _, p := range d.pairs {
		p.start(ctx.NeedsReset)
	}
	return nil
}

// setPairs applies a VQ_PAIRS_SET command.
func (d *Device) setPairs(n int) error {
	if err := d.enablePairs(n); err != nil {
		return err
	}
	d.pairsSet = n
	return nil
}

// enablePairs makes the first n queue pairs the active ones: their TAP
// queues attached, the others detached. When pairs are added the TAP
// queues attach first; when removed the workers learn it first.
func (d *Device) enablePairs(n int) error {
	old := int(d.activePairs.Load())
	if n < old {
		d.activePairs.Store(int32(n))
		d.wakePairs()
	}
	if d.tap.Queues() > 1 {
		for i := range d.tap.Queues() {
			if err := d.tap.SetQueueEnabled(i, i < n); err != nil {
				return fmt.Errorf("%w: %w", ErrBackend, err)
			}
		}
	}
	if n >= old {
		d.activePairs.Store(int32(n))
		d.wakePairs()
	}
	return nil
}

// wakePairs makes every pair worker look at the active-pair count again.
func (d *Device) wakePairs() {
	for _, p := range d.pairs {
		p.wake.Signal()
	}
}

// setOffloads applies a GUEST_OFFLOADS_SET command.
func (d *Device) setOffloads(o uint64) error {
	if err := d.tap.SetOffload(tapOffloads(o)); err != nil {
		return fmt.Errorf("%w: %w", ErrBackend, err)
	}
	d.offloads.Store(o)
	d.offloadsSet = true
	return nil
}

// tapOffloads maps the driver's receive offloads to TAP offload flags.
func tapOffloads(f uint64) uint {
	if f&FeatureGuestCSUM == 0 {
		return 0 // segmentation offloads need partial checksums
	}
	o := uint(hostos.TapOffloadCSUM)
	if f&FeatureGuestTSO4 != 0 {
		o |= hostos.TapOffloadTSO4
	}
	if f&FeatureGuestTSO6 != 0 {
		o |= hostos.TapOffloadTSO6
	}
	if f&FeatureGuestECN != 0 && o&(hostos.TapOffloadTSO4|hostos.TapOffloadTSO6) != 0 {
		o |= hostos.TapOffloadTSOECN
	}
	if f&FeatureGuestUFO != 0 {
		o |= hostos.TapOffloadUFO
	}
	return o
}

// Reset stops the workers and forgets the queues.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
}

// stopLocked stops every worker and returns to the inactive state; d.mu
// is held.
func (d *Device) stopLocked() {
	if d.worker != nil {
		d.worker.Stop()
		d.worker = nil
	}
	for _, p := range d.pairs {
		p.stop()
	}
	if d.features != 0 {
		d.logStats()
	}
	d.pairs, d.ctrl, d.irq, d.features = nil, nil, nil, 0
	d.activePairs.Store(0)
}

// quiesce halts every worker so their queues can be inspected; d.mu is
// held. It reports whether the control worker was running.
func (d *Device) quiesce() bool {
	ctrlRunning := false
	if d.worker != nil {
		select {
		case <-d.worker.Done(): // it failed: leave it stopped
		default:
			ctrlRunning = true
		}
		d.worker.Stop()
		d.worker = nil
	}
	for _, p := range d.pairs {
		p.halt()
	}
	return ctrlRunning
}

// unquiesce restarts what quiesce halted; d.mu is held.
func (d *Device) unquiesce(ctrlRunning bool) {
	if ctrlRunning {
		w, err := virtio.StartWorker(d.ctrlCfg)
		if err != nil {
			d.ctrlCfg.Failed(err)
		} else {
			d.worker = w
			d.ctrlCfg.Events[0].Signal()
		}
	}
	for _, p := range d.pairs {
		p.resume()
		p.wake.Signal()
	}
}

// Close resets the device and closes its backend (a TAP it created
// disappears). It is safe to call twice.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.stopLocked()
	d.closed = true
	return d.tap.Close()
}

// logStats writes each queue pair's counters to the debug log.
func (d *Device) logStats() {
	for i := range d.stats {
		s := d.stats[i].snapshot()
		d.log.Debug("virtio-net queue statistics", "net", d.cfg.ID, "tap", d.tap.Name(), "pair", i,
			"rx_packets", s.RxPackets, "rx_bytes", s.RxBytes, "rx_dropped", s.RxDropped,
			"tx_packets", s.TxPackets, "tx_bytes", s.TxBytes, "tx_dropped", s.TxDropped, "rx_merged", s.RxMerged)
	}
}
