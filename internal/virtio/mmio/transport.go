package mmio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/irq"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

// Errors of the transport.
var (
	ErrFeatures = errors.New("mmio: driver accepted features the device does not offer")
	ErrLegacy   = errors.New("mmio: driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are not supported)")
	ErrOrder    = errors.New("mmio: DRIVER_OK set before FEATURES_OK")
	ErrQueueNum = errors.New("mmio: queue size above 65535")
	ErrDevice   = errors.New("mmio: device has no queues or an invalid queue maximum")
)

// queueRegs are the per-queue registers the driver programs.
type queueRegs struct {
	num                  uint32
	ready                bool
	desc, driver, device uint64
}

// Transport exposes one virtio.Device as a virtio-mmio register window. It
// implements bus.Device; accesses from several vCPUs are serialised.
type Transport struct {
	dev      virtio.Device
	mem      *guestmem.Memory
	log      *slog.Logger
	id       virtio.DeviceID
	offered  uint64
	maxSizes []uint16
	intr     *interrupt

	mu          sync.Mutex // guards the driver-programmed registers below
	devFeatSel  uint32
	drvFeatSel  uint32
	drvFeatures uint64
	badFeatures bool // a non-zero write to a driver feature word beyond 64 bits
	queueSel    uint32
	regs        []queueRegs
	queues      []*virtio.Queue
	active      bool
	attached    *attachment
	closed      bool

	// Written by the device's workers too, so lock-free.
	status    atomic.Uint32
	isr       isrReg
	configGen atomic.Uint32

	notify  []*hostos.EventFD
	irqfd   *hostos.EventFD
	trigger irq.Trigger
}

// Option configures a Transport.
type Option func(*Transport)

// WithLogger sets the logger for configuration events and device failures.
func WithLogger(l *slog.Logger) Option { return func(t *Transport) { t.log = l } }

// WithTrigger replaces the irqfd as the interrupt output (for tests, or a
// machine that raises edges another way).
func WithTrigger(tr irq.Trigger) Option { return func(t *Transport) { t.trigger = tr } }

// New builds the transport for dev over guest memory mem. It creates one
// notify eventfd per queue and the interrupt eventfd; Attach registers
// them with KVM, Close releases them.
func New(dev virtio.Device, mem *guestmem.Memory, opts ...Option) (*Transport, error) {
	sizes := dev.QueueMaxSizes()
	if len(sizes) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrDevice, dev.Type())
	}
	t := &Transport{
		dev:      dev,
		mem:      mem,
		log:      slog.Default(),
		id:       dev.Type(),
		offered:  dev.Features()&virtio.OfferableFeatures | virtio.FeatureVersion1,
		maxSizes: append([]uint16(nil), sizes...),
		regs:     make([]queueRegs, len(sizes)),
	}
	t.intr = &interrupt{t: t}
	for _, o := range opts {
		o(t)
	}
	for i, n := range sizes {
		q, err := virtio.NewQueue(n)
		if err != nil {
			return nil, fmt.Errorf("%w: %s queue %d: %w", ErrDevice, t.id, i, err)
		}
		t.queues = append(t.queues, q)
	}
	ok := false
	defer func() {
		if !ok {
			t.closeFDs()
		}
	}()
	for range sizes {
		e, err := hostos.NewEventFD()
		if err != nil {
			return nil, fmt.Errorf("mmio: %s notify eventfd: %w", t.id, err)
		}
		t.notify = append(t.notify, e)
	}
	e, err := hostos.NewEventFD()
	if err != nil {
		return nil, fmt.Errorf("mmio: %s interrupt eventfd: %w", t.id, err)
	}
	t.irqfd = e
	if t.trigger == nil {
		t.trigger = e
	}
	ok = true
	return t, nil
}

// Device returns the device behind the transport.
func (t *Transport) Device() virtio.Device { return t.dev }

// Status returns the device status register.
func (t *Transport) Status() uint32 { return t.status.Load() }

// InterruptStatus returns the interrupt status register.
func (t *Transport) InterruptStatus() uint32 { return t.isr.load() }

// Read implements bus.Device. Registers are 32 bits wide and must be read
// with aligned 4-byte accesses (others read as zero); the configuration
// space from ConfigOffset up accepts any width.
func (t *Transport) Read(off uint64, data []byte) {
	if off >= regConfig {
		t.mu.Lock()
		t.dev.ReadConfig(off-regConfig, data)
		t.mu.Unlock()
		return
	}
	if len(data) != 4 || off%4 != 0 {
		clear(data)
		return
	}
	t.mu.Lock()
	v := t.readReg(off)
	t.mu.Unlock()
	binary.LittleEndian.PutUint32(data, v)
}

// Write implements bus.Device, with the access rules of Read.
func (t *Transport) Write(off uint64, data []byte) {
	if off >= regConfig {
		t.mu.Lock()
		t.dev.WriteConfig(off-regConfig, data)
		t.mu.Unlock()
		return
	}
	if len(data) != 4 || off%4 != 0 {
		return
	}
	v := binary.LittleEndian.Uint32(data)
	if off == regQueueNotify {
		// The ioeventfd did not catch this write: deliver it the same way.
		t.notifyQueue(v)
		return
	}
	t.mu.Lock()
	if !t.closed {
		t.writeReg(off, v)
	}
	t.mu.Unlock()
}

// notifyQueue signals queue v's notify eventfd, as the ioeventfd would.
func (t *Transport) notifyQueue(v uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed && v < uint32(len(t.notify)) {
		t.notify[v].Signal()
	}
}

// readReg returns a register's value; t.mu is held.
func (t *Transport) readReg(off uint64) uint32 {
	switch off {
	case regMagic:
		return Magic
	case regVersion:
		return Version
	case regDeviceID:
		return uint32(t.id)
	case regVendorID:
		return VendorID
	case regDeviceFeatures:
		switch t.devFeatSel {
		case 0:
			return uint32(t.offered)
		case 1:
			return uint32(t.offered >> 32)
		}
		return 0
	case regQueueNumMax:
		if int(t.queueSel) < len(t.maxSizes) {
			return uint32(t.maxSizes[t.queueSel])
		}
		return 0
	case regQueueReady:
		if r := t.selected(); r != nil && r.ready {
			return 1
		}
		return 0
	case regInterruptStatus:
		return t.isr.read()
	case regStatus:
		return t.status.Load()
	case regSHMLenLow, regSHMLenHigh, regSHMBaseLow, regSHMBaseHigh:
		return ^uint32(0) // no shared memory regions
	case regConfigGeneration:
		return t.configGen.Load()
	}
	return 0
}

// selected returns the registers of the selected queue, or nil.
func (t *Transport) selected() *queueRegs {
	if int(t.queueSel) < len(t.regs) {
		return &t.regs[t.queueSel]
	}
	return nil
}

// writeReg applies a register write; t.mu is held.
func (t *Transport) writeReg(off uint64, v uint32) {
	switch off {
	case regDeviceFeaturesSel:
		t.devFeatSel = v
	case regDriverFeaturesSel:
		t.drvFeatSel = v
	case regDriverFeatures:
		t.writeDriverFeatures(v)
	case regQueueSel:
		t.queueSel = v
	case regQueueNum, regQueueReady, regQueueDescLow, regQueueDescHigh,
		regQueueDriverLow, regQueueDriverHigh, regQueueDeviceLow, regQueueDeviceHigh:
		t.writeQueueReg(off, v)
	case regInterruptACK:
		t.isr.ack(v)
	case regStatus:
		t.setStatus(v)
	}
}

func (t *Transport) writeDriverFeatures(v uint32) {
	if t.status.Load()&(virtio.StatusFeaturesOK|virtio.StatusDriverOK) != 0 {
		return // negotiation is over
	}
	switch t.drvFeatSel {
	case 0:
		t.drvFeatures = t.drvFeatures&^0xffffffff | uint64(v)
	case 1:
		t.drvFeatures = t.drvFeatures&0xffffffff | uint64(v)<<32
	default:
		if v != 0 {
			t.badFeatures = true
		}
	}
}

// writeQueueReg programs the selected queue. A ready queue is frozen until
// the device is reset, as is every queue once the device is active.
func (t *Transport) writeQueueReg(off uint64, v uint32) {
	r := t.selected()
	if r == nil || t.active {
		return
	}
	if off == regQueueReady {
		r.ready = v == 1
		return
	}
	if r.ready {
		return
	}
	setLow := func(p *uint64) { *p = *p&^0xffffffff | uint64(v) }
	setHigh := func(p *uint64) { *p = *p&0xffffffff | uint64(v)<<32 }
	switch off {
	case regQueueNum:
		r.num = v
	case regQueueDescLow:
		setLow(&r.desc)
	case regQueueDescHigh:
		setHigh(&r.desc)
	case regQueueDriverLow:
		setLow(&r.driver)
	case regQueueDriverHigh:
		setHigh(&r.driver)
	case regQueueDeviceLow:
		setLow(&r.device)
	case regQueueDeviceHigh:
		setHigh(&r.device)
	}
}
