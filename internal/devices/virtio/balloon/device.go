// Package balloon is the virtio memory balloon (virtio 1.2, section 5.5):
// the host sets a target size in 4 KiB pages, the guest's driver gives
// pages to the balloon on the inflate queue (the device returns them to
// the host with madvise) and takes them back on the deflate queue. It
// also serves the statistics queue (VIRTIO_BALLOON_F_STATS_VQ) and free
// page reporting (VIRTIO_BALLOON_F_PAGE_REPORTING), and offers
// VIRTIO_BALLOON_F_DEFLATE_ON_OOM. Free page hinting is not offered.
package balloon

import (
	"encoding/binary"
	"log/slog"
	"sync"
	"time"

	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/metrics"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

// Feature bits of the balloon device.
const (
	FeatureMustTellHost = 1 << 0 // VIRTIO_BALLOON_F_MUST_TELL_HOST
	FeatureStatsVQ      = 1 << 1 // VIRTIO_BALLOON_F_STATS_VQ
	FeatureDeflateOnOOM = 1 << 2 // VIRTIO_BALLOON_F_DEFLATE_ON_OOM
	FeatureFreePageHint = 1 << 3 // VIRTIO_BALLOON_F_FREE_PAGE_HINT
	FeaturePagePoison   = 1 << 4 // VIRTIO_BALLOON_F_PAGE_POISON
	FeatureReporting    = 1 << 5 // VIRTIO_BALLOON_F_PAGE_REPORTING
)

const (
	// QueueSize is every queue's maximum size.
	QueueSize = 256
	// configSize is struct virtio_balloon_config: num_pages, actual,
	// free_page_hint_cmd_id and poison_val, each le32.
	configSize = 16
	offTarget  = 0
	offActual  = 4
	// ringFeatures are the ring features offered. Linux's driver turns
	// INDIRECT_DESC off for the balloon anyway.
	ringFeatures = virtio.FeatureVersion1 | virtio.FeatureEventIdx | virtio.FeatureIndirectDesc
)

// Queue roles. The transport numbers queues consecutively, leaving out
// the ones whose feature was not negotiated (as Linux's find_vqs does):
// inflate 0, deflate 1, then statistics and reporting if present.
const (
	roleInflate = iota
	roleDeflate
	roleStats
	roleReport
	numRoles
)

var roleNames = [numRoles]string{"inflate", "deflate", "statistics", "free page reporting"}

// Device is a virtio-balloon device. It implements virtio.Device; the
// methods in control.go are its host-side controls, safe to call from any
// goroutine.
type Device struct {
	cfg      Config
	features uint64
	now      func() time.Time
	changed  chan struct{}

	// Locks are taken in the order mu, wmu, smu.
	mu     sync.Mutex       // guards the fields below
	target uint32           // num_pages, in 4 KiB pages
	actual uint32           // as the driver last wrote it
	irq    virtio.Interrupt // non-nil while active
	worker *virtio.Worker
	wake   *hostos.EventFD // tells the worker the interval changed
	carry  carry           // kept from the last Reset for the next Activate

	wmu sync.Mutex // held by the worker while it serves, and by State
	w   work       // the worker's state between Activate and Reset

	smu      sync.Mutex // guards the statistics and their interval
	interval time.Duration
	stats    Stats

	counters counters

	nmu        sync.Mutex  // guards the change signal's pacing
	lastSignal time.Time   // when Changes was last signalled
	trailing   *time.Timer // a signal due at the end of the interval
}

// counters are running totals, read lock-free.
type counters struct {
	inflates, deflates                                                       metrics.Counter
	inflated, deflated, invalid, discarded, reported, statsUpdates, failures metrics.Counter
}

// work is the worker's state.
type work struct {
	log    *slog.Logger
	irq    virtio.Interrupt
	queues [numRoles]*virtio.Queue // nil: not negotiated
	chains [numRoles]*virtio.DescriptorChain
	pager  *pager
	buf    [4 * 256]byte // PFNs or statistics, read in pieces
	slices [][]byte      // reporting buffers, reused

	// The statistics buffer the device holds until it wants new values.
	statsHeld bool
	statsHead uint16
	statsSeen time.Time // when it arrived
	warned    bool      // a bad PFN or madvise failure was logged
}

// New returns an inactive balloon device.
func New(cfg Config) *Device {
	f := uint64(ringFeatures)
	if cfg.StatsInterval > 0 {
		f |= FeatureStatsVQ
	}
	if cfg.DeflateOnOOM {
		f |= FeatureDeflateOnOOM
	}
	if cfg.FreePageReporting {
		f |= FeatureReporting
	}
	if cfg.StatsInterval > MaxStatsInterval {
		cfg.StatsInterval = MaxStatsInterval
	}
	return &Device{
		cfg:      cfg,
		features: f,
		now:      time.Now,
		changed:  make(chan struct{}, 1),
		target:   cfg.TargetPages,
		interval: cfg.StatsInterval,
	}
}

// Type is virtio.IDBalloon.
func (d *Device) Type() virtio.DeviceID { return virtio.IDBalloon }

// Features are the ring features and the balloon features the
// configuration asks for.
func (d *Device) Features() uint64 { return d.features }

// QueueMaxSizes has one entry per queue the offered features call for.
func (d *Device) QueueMaxSizes() []uint16 {
	n := 2
	if d.features&FeatureStatsVQ != 0 {
		n++
	}
	if d.features&FeatureReporting != 0 {
		n++
	}
	sizes := make([]uint16, n)
	for i := range sizes {
		sizes[i] = QueueSize
	}
	return sizes
}

// ReadConfig reads the configuration space: num_pages (the target) and
// actual; the free page hint command ID and poison value read as zero.
func (d *Device) ReadConfig(off uint64, data []byte) {
	clear(data)
	if off >= configSize {
		return
	}
	var b [configSize]byte
	d.mu.Lock()
	binary.LittleEndian.PutUint32(b[offTarget:], d.target)
	binary.LittleEndian.PutUint32(b[offActual:], d.actual)
	d.mu.Unlock()
	copy(data, b[off:])
}

// WriteConfig accepts writes to actual, the only field the driver
// writes; other bytes are read-only. A change of actual is announced on
// Changes.
func (d *Device) WriteConfig(off uint64, data []byte) {
	if off >= configSize || uint64(len(data)) > configSize-off {
		return
	}
	var b [configSize]byte
	d.mu.Lock()
	binary.LittleEndian.PutUint32(b[offActual:], d.actual)
	copy(b[off:], data)
	old := d.actual
	d.actual = binary.LittleEndian.Uint32(b[offActual:])
	changed := d.actual != old
	d.mu.Unlock()
	if changed {
		d.notifyChange()
	}
}

// ChangeInterval is the shortest time between two signals on Changes:
// the driver updates actual every 256 pages, and QEMU too sends at most
// one BALLOON_CHANGE per second. The last change of a burst is always
// signalled.
const ChangeInterval = time.Second

// notifyChange signals Changes without blocking, at most once per
// ChangeInterval; a change inside the interval is signalled at its end.
func (d *Device) notifyChange() {
	d.nmu.Lock()
	defer d.nmu.Unlock()
	if d.trailing != nil {
		return // a signal is already due
	}
	if wait := ChangeInterval - d.now().Sub(d.lastSignal); wait > 0 && !d.lastSignal.IsZero() {
		d.trailing = time.AfterFunc(wait, func() {
			d.nmu.Lock()
			defer d.nmu.Unlock()
			d.trailing = nil
			d.signal()
		})
		return
	}
	d.signal()
}

// signal sends on Changes; d.nmu is held.
func (d *Device) signal() {
	d.lastSignal = d.now()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}
