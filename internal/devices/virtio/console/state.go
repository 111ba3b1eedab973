package console

import (
	"errors"
	"fmt"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// State is the device's state as plain data, for snapshots.
type State struct {
	// Active reports whether the driver had started the device.
	Active bool
	// Features are the negotiated feature bits (0 when inactive).
	Features uint64
	// Queues holds every queue's state, in queue order. A transmit
	// request in progress is counted as not yet taken (see PortState).
	Queues []virtio.QueueState
	// Ports has one entry per port that exists, in port order.
	Ports []PortState
}

// PortState is one port's state.
type PortState struct {
	ID      int
	Name    string // channel name; empty for the console
	Console bool
	Socket  string // the channel's socket path (backend identity)

	Ready, GuestOpen, HostOpen     bool
	NeedAdd, NeedConsole, NeedName bool
	// TxSkip is meaningful when TxBusy: the guest's transmit request at
	// the head of the queue had its first TxSkip bytes delivered to the
	// host already; they are skipped when it is taken again.
	TxBusy bool
	TxSkip uint64
}

// State returns the device's state. It waits for the worker to finish its
// current pass; host-side bytes staged in sockets or console input are
// not part of it.
func (d *Device) State() State {
	d.svc.Lock()
	defer d.svc.Unlock()
	var s State
	active := d.queues != nil
	if active {
		s.Active = true
		if d.multiport {
			s.Features |= FeatureMultiport
		}
		s.Features |= ringFeatures
		for _, q := range d.queues {
			s.Queues = append(s.Queues, q.State())
		}
	}
	for _, p := range d.ports {
		if p == nil {
			continue
		}
		ps := PortState{
			ID: p.id, Name: p.name, Console: p.console,
			Ready: p.ready, GuestOpen: p.guestOpen, HostOpen: p.hostOpen,
			NeedAdd: p.needAdd, NeedConsole: p.needConsole, NeedName: p.needName,
		}
		if p.sock != nil {
			ps.Socket = p.sock.Path()
		}
		if active && p.txBusy {
			consumed := p.txChain.ReadableLen() - p.txChain.Remaining()
			ps.TxBusy, ps.TxSkip = true, consumed-uint64(p.end.stagedOut())
			s.Queues[p.txIdx].LastAvail--
		}
		s.Ports = append(s.Ports, ps)
	}
	return s
}

// Restore checks s against the device's configuration and keeps its port
// state for the next Activate, which then carries on where the saved
// device stopped (ports already announced and open, a transmit request in
// progress resumed after its delivered bytes). The queues' own state is
// restored by their owner, the transport, before it activates the device.
func (d *Device) Restore(s State) error {
	d.svc.Lock()
	defer d.svc.Unlock()
	i := 0
	for _, p := range d.ports {
		if p == nil {
			continue
		}
		if i >= len(s.Ports) {
			return fmt.Errorf("%w: saved state has %d ports, the device more", ErrConfig, len(s.Ports))
		}
		ps := s.Ports[i]
		if ps.ID != p.id || ps.Name != p.name || ps.Console != p.console {
			return fmt.Errorf("%w: saved port %d (%q) does not match port %d (%q)", ErrConfig, ps.ID, ps.Name, p.id, p.name)
		}
		i++
	}
	if i != len(s.Ports) {
		return fmt.Errorf("%w: saved state has %d ports, the device %d", ErrConfig, len(s.Ports), i)
	}
	d.restored = append(d.restored[:0], s.Ports...)
	return nil
}

// applyRestored puts saved port state into effect at activation; d.svc
// is held and the queues are set up.
func (d *Device) applyRestored() error {
	saved := d.restored
	d.restored = nil
	i := 0
	for _, p := range d.ports {
		if p == nil {
			continue
		}
		ps := saved[i]
		i++
		p.ready, p.guestOpen, p.hostOpen = ps.Ready, ps.GuestOpen, ps.HostOpen
		p.needAdd, p.needConsole, p.needName = ps.NeedAdd, ps.NeedConsole, ps.NeedName
		if p.id == 0 && !d.multiport && p.guestOpen {
			d.gateClosed = false // the saved guest had its console up
		}
		if !ps.TxBusy || p.tx == nil || !p.tx.Ready() {
			continue
		}
		ok, err := p.tx.Pop(p.txChain)
		if errors.Is(err, virtio.ErrBadChain) {
			if err := d.addUsed(p.txIdx, p.txChain.Head(), 0); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if ok {
			p.txChain.Skip(ps.TxSkip)
			p.txBusy = true
		}
	}
	return nil
}
