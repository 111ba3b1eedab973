package vsock

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrRestore reports a saved state that does not fit the device.
var ErrRestore = errors.New("vsock: cannot restore state")

// State is the device's part of a snapshot, plain data; the transport
// saves the queues. Connections are not saved: their host sockets cannot
// be, so a restored device starts with a TRANSPORT_RESET event and the
// guest resets its connected sockets (as Firecracker does).
type State struct {
	// CID and UDSPath are the configuration the device ran with. A
	// restored device keeps its own configuration, which may differ (a
	// clone restored beside its original needs another socket path, and
	// may get another CID: the guest reads the CID again on the event).
	CID     uint64
	UDSPath string
}

// State returns the device's state.
func (d *Device) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return State{CID: d.cfg.CID, UDSPath: d.cfg.UDSPath}
}

// Restore checks a saved state on an inactive device and arranges for
// the next activation to send TRANSPORT_RESET.
func (d *Device) Restore(s State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mux != nil {
		return fmt.Errorf("%w: the device is active", ErrRestore)
	}
	if s.CID < MinGuestCID || s.CID > MaxGuestCID {
		return fmt.Errorf("%w: cid %d is out of range", ErrRestore, s.CID)
	}
	d.resetDue = true
	return nil
}

// SaveState implements virtio.Snapshotter.
func (d *Device) SaveState() ([]byte, error) {
	b, err := json.Marshal(d.State())
	if err != nil {
		return nil, fmt.Errorf("vsock: saving state: %w", err)
	}
	return b, nil
}

// RestoreState implements virtio.Snapshotter.
func (d *Device) RestoreState(data []byte) error {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%w: %w", ErrRestore, err)
	}
	return d.Restore(s)
}
