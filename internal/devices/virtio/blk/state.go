package blk

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrState reports a saved state that does not fit this device.
var ErrState = errors.New("virtio-blk: saved state does not match the disk")

// State is the device's own state as plain data, for snapshots: the
// backend's identity. The transport saves the negotiated features and the
// queues (mmio.State); the image contents stay in the disk file, which
// must be the same file, unchanged in size, on restore. Requests in
// flight need no state: the transport quiesces the device (Reset waits
// for the workers) before saving, so every request taken from a ring has
// completed.
type State struct {
	// Config is the disk as opened: path, format, read-only, id, serial,
	// cache mode and queue count.
	Config Config
	// Capacity is the disk size in sectors.
	Capacity uint64
}

// State returns the device's state.
func (d *Device) State() State {
	return State{Config: d.cfg, Capacity: d.capacity}
}

// Restore checks that a saved state describes this device: a restored
// guest must find the same disk, with the same size and features.
func (d *Device) Restore(st State) error {
	c := st.Config
	switch {
	case c.Path != d.cfg.Path || c.Format != d.cfg.Format || c.ReadOnly != d.cfg.ReadOnly:
		return fmt.Errorf("%w: saved for %s (%s, read-only %v), opened %s (%s, read-only %v)",
			ErrState, c.Path, c.Format, c.ReadOnly, d.cfg.Path, d.cfg.Format, d.cfg.ReadOnly)
	case c.queues() != d.cfg.queues() || c.cache() != d.cfg.cache():
		return fmt.Errorf("%w: saved with %d queues and cache=%s, opened with %d and cache=%s",
			ErrState, c.queues(), c.cache(), d.cfg.queues(), d.cfg.cache())
	case c.Serial != d.cfg.Serial:
		return fmt.Errorf("%w: serial %q saved, %q configured", ErrState, c.Serial, d.cfg.Serial)
	case st.Capacity != d.capacity:
		return fmt.Errorf("%w: %s has %d sectors, the saved state %d", ErrState, d.cfg.Path, d.capacity, st.Capacity)
	}
	return nil
}

// SaveState encodes State as JSON (virtio.Snapshotter).
func (d *Device) SaveState() ([]byte, error) {
	return json.Marshal(d.State())
}

// RestoreState decodes a SaveState result and checks it with Restore
// (virtio.Snapshotter).
func (d *Device) RestoreState(data []byte) error {
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	return d.Restore(st)
}
