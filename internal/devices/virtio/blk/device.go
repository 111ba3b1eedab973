// Package blk is the virtio block device (virtio 1.2, section 5.2): a raw
// image file or host block device, read-write or read-only, or a qcow2
// image read-only. Each request queue has its own worker goroutine that
// moves data between the file and guest memory in place (preadv and
// pwritev on guest buffers), so requests on different queues run in
// parallel.
package blk

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// Device is a virtio-blk device. It implements virtio.Device.
type Device struct {
	cfg      Config
	disk     backend
	format   Format
	capacity uint64 // in sectors
	features uint64
	config   [configSize]byte
	serial   [idBytes]byte
	log      *slog.Logger
	ioErrs   limiter // host I/O errors, logged at most every few seconds
	badReqs  limiter // malformed guest requests, logged at debug level
	stats    counters

	mu      sync.Mutex // guards the fields below
	servers []*queueServer
	active  bool
	feats   uint64 // negotiated while active
	closed  bool
}

// Open opens the image cfg names and returns an inactive device. The
// caller closes it with Close once the transport has released it.
func Open(cfg Config, log *slog.Logger) (*Device, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.ID == "" {
		cfg.ID = "disk0"
	}
	if cfg.Serial == "" {
		cfg.Serial = cfg.ID[:min(len(cfg.ID), idBytes)]
	}
	log = log.With("disk", cfg.ID)
	disk, size, format, dioAlign, err := openImage(&cfg, log.Warn)
	if err != nil {
		return nil, err
	}
	if size%SectorSize != 0 {
		log.Warn("disk: the image size is not a multiple of 512 bytes; the last partial sector is not visible to the guest", "path", cfg.Path, "size", size)
	}
	d := &Device{
		cfg:      cfg,
		disk:     disk,
		format:   format,
		capacity: uint64(size) / SectorSize,
		log:      log,
	}
	d.cfg.Format = format
	copy(d.serial[:], cfg.Serial)
	d.features = d.offer()
	d.fillConfig(dioAlign)
	return d, nil
}

// offer computes the offered feature bits.
func (d *Device) offer() uint64 {
	f := uint64(virtio.FeatureVersion1 | virtio.FeatureEventIdx | virtio.FeatureIndirectDesc |
		featSizeMax | featSegMax | featBlkSize | featTopology)
	if d.cfg.ReadOnly {
		f |= featRO
	} else if d.format == FormatRaw {
		f |= featDiscard | featWriteZeroes
	}
	if d.cfg.cache() != CacheUnsafe {
		f |= featFlush
	}
	if d.cfg.queues() > 1 {
		f |= featMQ
	}
	return f
}

// fillConfig lays out the configuration space. dioAlign, when above one
// sector, becomes the logical block size so that the guest's requests
// suit direct I/O.
func (d *Device) fillConfig(dioAlign uint32) {
	c := d.config[:]
	le := binary.LittleEndian
	logical := uint32(SectorSize)
	if dioAlign > SectorSize {
		logical = dioAlign
	}
	const physical = 4096
	exp := 0
	if logical < physical {
		exp = bits.TrailingZeros32(physical / logical)
	}
	le.PutUint64(c[cfgCapacity:], d.capacity)
	le.PutUint32(c[cfgSizeMax:], defaultSizeMax)
	le.PutUint32(c[cfgSegMax:], defaultQueueSize-descriptorsReserved)
	le.PutUint32(c[cfgBlkSize:], logical)
	c[cfgPhysBlockExp] = byte(exp)
	c[cfgAlignmentOffset] = 0
	le.PutUint16(c[cfgMinIOSize:], uint16(1<<exp))
	le.PutUint32(c[cfgOptIOSize:], 0)
	le.PutUint16(c[cfgNumQueues:], uint16(d.cfg.queues()))
	if d.features&featDiscard != 0 {
		le.PutUint32(c[cfgMaxDiscardSect:], maxSegmentSectors)
		le.PutUint32(c[cfgMaxDiscardSeg:], maxDiscardSegments)
		le.PutUint32(c[cfgDiscardAlign:], physical/SectorSize)
	}
	if d.features&featWriteZeroes != 0 {
		le.PutUint32(c[cfgMaxZeroesSect:], maxSegmentSectors)
		le.PutUint32(c[cfgMaxZeroesSeg:], maxDiscardSegments)
		c[cfgZeroesMayUnmap] = 1
	}
}

// Type is virtio.IDBlock.
func (d *Device) Type() virtio.DeviceID { return virtio.IDBlock }

// Features are the ring features and the block features this disk
// supports (see offer).
func (d *Device) Features() uint64 { return d.features }

// QueueMaxSizes has one entry per request queue.
func (d *Device) QueueMaxSizes() []uint16 {
	s := make([]uint16, d.cfg.queues())
	for i := range s {
		s[i] = defaultQueueSize
	}
	return s
}

// ReadConfig reads the configuration space; bytes beyond it read as zero.
func (d *Device) ReadConfig(off uint64, data []byte) {
	clear(data)
	if off < configSize {
		copy(data, d.config[off:])
	}
}

// WriteConfig ignores the write: no field is writable (no
// VIRTIO_BLK_F_CONFIG_WCE).
func (d *Device) WriteConfig(uint64, []byte) {}

// Activate starts one worker per ready request queue. Queue 0 must be
// ready.
func (d *Device) Activate(ctx virtio.ActivateContext) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active {
		return virtio.ErrAlreadyActive
	}
	n := min(len(ctx.Queues), len(ctx.Notify), d.cfg.queues())
	if n < 1 || !ctx.Queues[0].Ready() {
		return fmt.Errorf("%w: virtio-blk request queue 0", virtio.ErrMissingQueue)
	}
	log := ctx.Log
	if log == nil {
		log = d.log
	}
	var servers []*queueServer
	for i := range n {
		q := ctx.Queues[i]
		if !q.Ready() {
			continue
		}
		s := newQueueServer(d, i, q, ctx.Interrupt)
		w, err := virtio.StartWorker(virtio.WorkerConfig{
			Name:   fmt.Sprintf("virtio-blk %s queue %d", d.cfg.ID, i),
			Events: ctx.Notify[i : i+1],
			Handle: s.handle,
			Failed: ctx.NeedsReset,
			Log:    log,
		})
		if err != nil {
			for _, s := range servers {
				s.worker.Stop()
			}
			return err
		}
		s.worker = w
		servers = append(servers, s)
	}
	d.servers, d.active, d.feats = servers, true, ctx.Features
	// Look at each ring once even if the driver's first notification was
	// drained by a reset.
	for _, s := range servers {
		ctx.Notify[s.index].Signal()
	}
	return nil
}

// Reset stops the workers, waiting for requests in progress to finish,
// and forgets the queues.
func (d *Device) Reset() {
	d.mu.Lock()
	servers := d.servers
	d.servers, d.active, d.feats = nil, false, 0
	d.mu.Unlock()
	for _, s := range servers {
		s.worker.Stop()
	}
}

// Close stops the device and closes the image. Call it once the
// transport is closed.
func (d *Device) Close() error {
	d.Reset()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.disk.close()
}

// Info describes the disk for management APIs.
type Info struct {
	ID       string
	Path     string
	Format   Format
	ReadOnly bool
	Cache    CacheMode
	Size     uint64 // bytes visible to the guest
	Serial   string
	Queues   int
}

// Info describes the disk.
func (d *Device) Info() Info {
	return Info{
		ID: d.cfg.ID, Path: d.cfg.Path, Format: d.format, ReadOnly: d.cfg.ReadOnly,
		Cache: d.cfg.cache(), Size: d.capacity * SectorSize, Serial: d.cfg.Serial, Queues: d.cfg.queues(),
	}
}
