package net

import (
	"encoding/json"
	"fmt"

	"github.com/vireo-vmm/vireo/internal/metrics"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

// State is the device's state as plain data, for snapshots. The backend
// is identified by Config.Tap; a restored device may use another TAP, but
// what the guest sees (MAC, MTU, queue pairs) must match.
// Packets in flight inside the VMM (at most one received packet per queue
// pair waiting for buffers) are not part of it, as a network may lose
// them.
type State struct {
	// Config is the device's normalized configuration.
	Config Config
	// Features are the negotiated features (0 while inactive).
	Features uint64 `json:",omitempty"`
	// LinkUp is the link status shown to the driver.
	LinkUp bool
	// ActivePairs is the queue-pair count the driver set with
	// VQ_PAIRS_SET (0: never set, one pair).
	ActivePairs int `json:",omitempty"`
	// Offloads are the receive offloads the driver set with
	// GUEST_OFFLOADS_SET, when OffloadsSet.
	Offloads    uint64 `json:",omitempty"`
	OffloadsSet bool   `json:",omitempty"`
	// Queues are the states of the queues the device serves while active,
	// in QueueMaxSizes order (the transport saves them too).
	Queues []virtio.QueueState `json:",omitempty"`
	// Stats are the per-pair counters.
	Stats []QueueStats
}

// State captures the device's state. An active device's workers are
// halted for the capture and then resume.
func (d *Device) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	defer d.unquiesce(d.quiesce())
	s := State{
		Config:      d.cfg,
		Features:    d.features,
		LinkUp:      d.linkUp.Load(),
		ActivePairs: d.pairsSet,
		OffloadsSet: d.offloadsSet,
		Stats:       d.Stats(),
	}
	if d.offloadsSet {
		s.Offloads = d.offloads.Load()
	}
	for _, p := range d.pairs {
		s.Queues = append(s.Queues, p.rxq.State(), p.txq.State())
	}
	if d.ctrl != nil {
		s.Queues = append(s.Queues, d.ctrl.q.State())
	}
	return s
}

// Restore applies a saved state to an inactive device with the same
// guest-visible configuration: the link status and counters at once, the queue pairs
// and receive offloads the driver had set at the next Activate on the
// restored queues (the transport restores those and activates the
// device).
func (d *Device) Restore(s State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.features != 0:
		return fmt.Errorf("%w: %w", ErrState, virtio.ErrAlreadyActive)
	case s.Config.MAC != d.cfg.MAC || s.Config.Queues != d.cfg.Queues || s.Config.MTU != d.cfg.MTU:
		return fmt.Errorf("%w: saved mac=%s queues=%d mtu=%d, device mac=%s queues=%d mtu=%d", ErrState,
			s.Config.MAC, s.Config.Queues, s.Config.MTU, d.cfg.MAC, d.cfg.Queues, d.cfg.MTU)
	case len(s.Stats) > len(d.stats):
		return fmt.Errorf("%w: counters for %d queue pairs, the device has %d", ErrState, len(s.Stats), len(d.stats))
	case s.ActivePairs < 0 || s.ActivePairs > d.cfg.Queues:
		return fmt.Errorf("%w: %d active queue pairs, the device has %d", ErrState, s.ActivePairs, d.cfg.Queues)
	case s.Offloads&^guestOffloads != 0:
		return fmt.Errorf("%w: receive offloads %#x", ErrState, s.Offloads)
	}
	d.linkUp.Store(s.LinkUp)
	for i, st := range s.Stats {
		c := &d.stats[i]
		c.rxPackets.Store(st.RxPackets)
		c.rxBytes.Store(st.RxBytes)
		c.rxDropped.Store(st.RxDropped)
		c.txPackets.Store(st.TxPackets)
		c.txBytes.Store(st.TxBytes)
		c.txDropped.Store(st.TxDropped)
		c.rxMerged.Store(st.RxMerged)
	}
	d.pairsSet, d.offloadsSet = s.ActivePairs, s.OffloadsSet
	d.offloads.Store(s.Offloads)
	return nil
}

// SaveState implements virtio.Snapshotter: State as JSON.
func (d *Device) SaveState() ([]byte, error) {
	b, err := json.Marshal(d.State())
	if err != nil {
		return nil, fmt.Errorf("net: saving state: %w", err)
	}
	return b, nil
}

// RestoreState implements virtio.Snapshotter.
func (d *Device) RestoreState(data []byte) error {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	return d.Restore(s)
}

// Stats returns each queue pair's counters.
func (d *Device) Stats() []QueueStats {
	out := make([]QueueStats, len(d.stats))
	for i := range d.stats {
		out[i] = d.stats[i].snapshot()
	}
	return out
}

// Metrics returns the device's counters summed over its queue pairs.
func (d *Device) Metrics() metrics.Net {
	m := metrics.Net{ID: d.cfg.ID}
	for i := range d.stats {
		s := d.stats[i].snapshot()
		m.RxPackets += s.RxPackets
		m.RxBytes += s.RxBytes
		m.RxDropped += s.RxDropped
		m.TxPackets += s.TxPackets
		m.TxBytes += s.TxBytes
		m.TxDropped += s.TxDropped
	}
	return m
}
