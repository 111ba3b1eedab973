package console

import (
	"errors"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// port is one port of the device. Its fields other than the configuration
// are owned by the worker between Activate and Reset.
type port struct {
	id      int
	name    string
	console bool
	end     endpoint
	sock    *Socket // end, when the port is a channel

	rx, tx    *virtio.Queue
	rxIdx     int
	txIdx     int
	txChain   *virtio.DescriptorChain
	txBusy    bool // txChain holds a request whose bytes are being staged
	ready     bool // the guest sent PORT_READY
	guestOpen bool // the guest has the port open (PORT_OPEN from the guest)
	hostOpen  bool // the host state last sent with PORT_OPEN

	// Control messages waiting for room in the control receive queue.
	needAdd, needConsole, needName bool
}

// resetSession forgets what the guest driver knew about the port.
func (p *port) resetSession() {
	p.rx, p.tx, p.txChain = nil, nil, nil
	p.txBusy, p.ready, p.guestOpen, p.hostOpen = false, false, false, false
	p.needAdd, p.needConsole, p.needName = false, false, false
}

// transmit moves guest output to the host: it flushes what is staged,
// finishes the request in progress and takes new ones while the host has
// a peer. A request is returned to the guest only once all its bytes were
// handed to the host; while the host cannot take them, requests stay in
// the queue.
func (d *Device) transmit(p *port) error {
	if p.tx == nil || !p.tx.Ready() {
		return nil
	}
	for {
		if !p.end.flush() {
			return nil
		}
		if p.txBusy {
			if p.txChain.Remaining() > 0 {
				if err := p.end.stage(p.txChain); err != nil {
					return err
				}
				continue
			}
			p.txBusy = false
			d.txBytes.Add(p.txChain.ReadableLen())
			if err := d.addUsed(p.txIdx, p.txChain.Head(), 0); err != nil {
				return err
			}
		}
		if !p.end.connected() {
			return nil
		}
		ok, err := p.tx.Next(p.txChain)
		if errors.Is(err, virtio.ErrBadChain) {
			d.log.Debug("virtio-console: dropping a malformed transmit request", "port", p.id, "err", err)
			if err := d.addUsed(p.txIdx, p.txChain.Head(), 0); err != nil {
				return err
			}
			continue
		}
		if err != nil || !ok {
			return err
		}
		p.txBusy = true
		if d.gateClosed && p.id == 0 {
			d.lastTx = d.now()
		}
	}
}

// receive moves host input into the guest's receive buffers while the
// guest has the port open; otherwise input waits on the host side.
func (d *Device) receive(p *port) error {
	if p.rx == nil || !p.rx.Ready() {
		return nil
	}
	for p.guestOpen && p.end.inputReady() {
		ok, err := p.rx.Next(d.rxChain)
		if errors.Is(err, virtio.ErrBadChain) {
			d.log.Debug("virtio-console: dropping a malformed receive buffer", "port", p.id, "err", err)
			if err := d.addUsed(p.rxIdx, d.rxChain.Head(), 0); err != nil {
				return err
			}
			continue
		}
		if err != nil || !ok {
			return err
		}
		n, err := p.end.deliver(d.rxChain)
		if err != nil {
			return err
		}
		d.rxBytes.Add(uint64(n))
		if err := d.addUsed(p.rxIdx, d.rxChain.Head(), uint32(n)); err != nil {
			return err
		}
	}
	return nil
}
