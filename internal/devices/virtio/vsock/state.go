package vsock

import (
	"errors"
	"fmt"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// ErrRestore reports a saved state that does not fit the device.
var ErrRestore = errors.New("vsock: cannot restore state")

// State is the device's snapshot: plain data. Connections are not saved:
// their host sockets cannot be, so a restored device starts with a
// TRANSPORT_RESET event and the guest resets its sockets (as Firecracker
// does).
type State struct {
	// CID is the guest's CID, which the guest has already read.
	CID uint64
	// UDSPath is the host socket the device listened on.
	UDSPath string
	// Active reports whether the driver had started the device.
	Active bool
	// Queues are the rx, tx and event queues' states when active; the
	// transport restores its queues from them.
	Queues []virtio.QueueState
}

// State returns the device's state. While the device is active the
// muxer is briefly held still so the queue indices are consistent.
func (d *Device) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := State{CID: d.cfg.CID, UDSPath: d.cfg.UDSPath}
	if m := d.mux; m != nil {
		s.Active = true
		m.mu.Lock()
		for _, q := range m.queues {
			var qs virtio.QueueState
			if q != nil {
				qs = q.State()
			}
			s.Queues = append(s.Queues, qs)
		}
		m.mu.Unlock()
	}
	return s
}

// Restore adopts a saved state on an inactive device: the guest keeps
// its CID; the host socket stays the one the device was built with (so a
// restored VM may listen elsewhere, as Firecracker's vsock_override
// allows). The next activation sends TRANSPORT_RESET.
func (d *Device) Restore(s State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mux != nil {
		return fmt.Errorf("%w: the device is active", ErrRestore)
	}
	if s.CID < MinGuestCID || s.CID > MaxGuestCID {
		return fmt.Errorf("%w: cid %d is out of range", ErrRestore, s.CID)
	}
	if s.Active && len(s.Queues) != numQueues {
		return fmt.Errorf("%w: %d queue states, want %d", ErrRestore, len(s.Queues), numQueues)
	}
	d.cfg.CID = s.CID
	d.resetDue = true
	return nil
}
