package console

import "time"

// gateSettle is how long a single-port console's output must pause, after
// the guest's first output, before host input is delivered. Linux posts a
// console port's receive buffers before it registers the port, and frees
// data that arrives in between; the kernel's first console output (the
// log replayed when hvc0 registers) comes from inside that window, so the
// gate waits for it to end. A multiport device needs no gate: the guest
// opens a console port with PORT_OPEN once it is registered.
const gateSettle = 250 * time.Millisecond

// openGate opens the single-port console's input once the guest's output
// has settled (see gateSettle); d.svc is held.
func (d *Device) openGate() {
	if d.gateClosed && !d.lastTx.IsZero() && d.now().Sub(d.lastTx) >= gateSettle {
		d.gateClosed = false
		d.ports[0].guestOpen = true
	}
}

// gateWait is how long until openGate may open the gate, or -1 for as
// long as no event comes; d.svc is held.
func (d *Device) gateWait() time.Duration {
	if !d.gateClosed || d.lastTx.IsZero() {
		return -1
	}
	return max(0, gateSettle-d.now().Sub(d.lastTx))
}
