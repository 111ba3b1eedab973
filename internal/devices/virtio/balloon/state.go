package balloon

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// State is the device's own state as plain data, for snapshots; the
// transport saves the queues and the negotiated features.
type State struct {
	// Config is the configuration the device was built with.
	Config        Config
	Target        uint32
	Actual        uint32
	StatsInterval time.Duration
	Stats         Stats
	// StatsHeld: the device holds the driver's statistics buffer, whose
	// head is StatsHead, and hands it back when the next request is due.
	StatsHeld bool
	StatsHead uint16
	// Ballooned is the hugetlbfs record of 4 KiB pages in the balloon,
	// one bitmap per RAM region (nil with small host pages).
	Ballooned [][]uint64 `json:",omitempty"`
}

// State returns the device's state. Take it while the device is stopped
// (the transport's Quiesce) or with the VM paused.
func (d *Device) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.smu.Lock()
	defer d.smu.Unlock()
	s := State{
		Config: d.cfg, Target: d.target, Actual: d.actual, StatsInterval: d.interval, Stats: d.stats,
		StatsHeld: d.carry.statsHeld, StatsHead: d.carry.statsHead, Ballooned: d.carry.ballooned,
	}
	if d.worker != nil {
		w := &d.w
		s.StatsHeld, s.StatsHead, s.Ballooned = w.statsHeld, w.statsHead, w.pager.ballooned
	}
	var copies [][]uint64
	for _, b := range s.Ballooned {
		copies = append(copies, append([]uint64(nil), b...))
	}
	s.Ballooned = copies
	return s
}

// Restore loads a saved state into an inactive device whose configuration
// calls for the same features. The statistics buffer and the balloon
// record are taken over by the next Activate, which the transport's
// restore triggers.
func (d *Device) Restore(s State) error {
	if New(s.Config).features != d.features {
		return fmt.Errorf("%w: saved configuration %+v needs other features than the device's %+v", ErrConfig, s.Config, d.cfg)
	}
	if s.StatsInterval < 0 || s.StatsInterval > MaxStatsInterval {
		return fmt.Errorf("%w: %v", ErrStatsInterval, s.StatsInterval)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.worker != nil {
		return virtio.ErrAlreadyActive
	}
	d.target, d.actual = s.Target, s.Actual
	d.smu.Lock()
	d.interval, d.stats = s.StatsInterval, s.Stats
	d.smu.Unlock()
	d.carry = carry{statsHeld: s.StatsHeld, statsHead: s.StatsHead, ballooned: s.Ballooned}
	return nil
}

// SaveState encodes State as JSON (virtio.Snapshotter).
func (d *Device) SaveState() ([]byte, error) {
	b, err := json.Marshal(d.State())
	if err != nil {
		return nil, fmt.Errorf("balloon: %w", err)
	}
	return b, nil
}

// RestoreState decodes and restores what SaveState encoded
// (virtio.Snapshotter).
func (d *Device) RestoreState(data []byte) error {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%w: saved state: %w", ErrConfig, err)
	}
	return d.Restore(s)
}

var _ virtio.Snapshotter = (*Device)(nil)
