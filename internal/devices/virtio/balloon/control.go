package balloon

import (
	"errors"
	"fmt"
	"time"

	"github.com/vireo-vmm/vireo/internal/metrics"
)

// Errors of the host-side controls.
var (
	ErrStatsDisabled = errors.New("balloon: statistics are not enabled on this device")
	ErrStatsInterval = errors.New("balloon: the statistics interval must be from 1 to 65535 seconds")
)

// SetTarget sets the balloon's target size in 4 KiB pages (the
// configuration's num_pages) and, while the driver runs, raises a
// configuration-change interrupt so that it inflates or deflates.
func (d *Device) SetTarget(pages uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.target = pages
	if d.irq == nil {
		return nil // the driver reads the target when it starts
	}
	if err := d.irq.ConfigChanged(); err != nil {
		return fmt.Errorf("balloon: %w", err)
	}
	return nil
}

// Target is the target size in 4 KiB pages.
func (d *Device) Target() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.target
}

// Actual is the number of 4 KiB pages in the balloon, as the driver last
// reported it.
func (d *Device) Actual() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.actual
}

// Changes receives a value (coalesced) whenever Actual changes.
func (d *Device) Changes() <-chan struct{} { return d.changed }

// Config returns the device's configuration.
func (d *Device) Config() Config { return d.cfg }

// StatsEnabled reports whether the device offers the statistics queue.
func (d *Device) StatsEnabled() bool { return d.features&FeatureStatsVQ != 0 }

// Stats returns the guest's latest statistics (Updated is zero before the
// first report).
func (d *Device) Stats() Stats {
	d.smu.Lock()
	defer d.smu.Unlock()
	return d.stats
}

// StatsInterval is the current statistics polling interval.
func (d *Device) StatsInterval() time.Duration {
	d.smu.Lock()
	defer d.smu.Unlock()
	return d.interval
}

// SetStatsInterval changes how often the guest is asked for statistics.
func (d *Device) SetStatsInterval(interval time.Duration) error {
	if !d.StatsEnabled() {
		return ErrStatsDisabled
	}
	if interval < time.Second || interval > MaxStatsInterval {
		return fmt.Errorf("%w: got %v", ErrStatsInterval, interval)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.smu.Lock()
	d.interval = interval
	d.smu.Unlock()
	if d.wake != nil {
		if err := d.wake.Signal(); err != nil {
			return fmt.Errorf("balloon: waking the worker: %w", err)
		}
	}
	return nil
}

// Counters are running totals since the device was created.
type Counters struct {
	InflatedPages  uint64 // pages the guest put in the balloon
	DeflatedPages  uint64 // pages it took back
	InvalidPages   uint64 // PFNs or reported ranges outside guest RAM, ignored
	DiscardedBytes uint64 // bytes of inflated pages returned to the host
	ReportedBytes  uint64 // bytes of reported free memory returned to the host
	StatsUpdates   uint64 // statistics reports received
	Failures       uint64 // times the device stopped and asked for a reset
}

// Metrics returns the running totals as the metrics snapshot reports them.
func (d *Device) Metrics() metrics.Balloon {
	c := &d.counters
	return metrics.Balloon{
		Inflates:      c.inflates.Load(),
		Deflates:      c.deflates.Load(),
		InflatedPages: c.inflated.Load(),
		DeflatedPages: c.deflated.Load(),
		InvalidPages:  c.invalid.Load(),
		StatsUpdates:  c.statsUpdates.Load(),
		Discarded:     c.discarded.Load(),
		Reported:      c.reported.Load(),
		Failures:      c.failures.Load(),
	}
}

// Counters returns the running totals.
func (d *Device) Counters() Counters {
	c := &d.counters
	return Counters{
		InflatedPages:  c.inflated.Load(),
		DeflatedPages:  c.deflated.Load(),
		InvalidPages:   c.invalid.Load(),
		DiscardedBytes: c.discarded.Load(),
		ReportedBytes:  c.reported.Load(),
		StatsUpdates:   c.statsUpdates.Load(),
		Failures:       c.failures.Load(),
	}
}
