package console

import (
	"encoding/binary"
	"errors"
	"io"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// Control is a virtio_console_control header.
type Control struct {
	ID    uint32 // port number, or 0xffffffff for the device
	Event uint16
	Value uint16
}

// ParseControl decodes a control header from the first ControlSize bytes
// of b; it reports false when b is shorter.
func ParseControl(b []byte) (Control, bool) {
	if len(b) < ControlSize {
		return Control{}, false
	}
	return Control{
		ID:    binary.LittleEndian.Uint32(b[0:]),
		Event: binary.LittleEndian.Uint16(b[4:]),
		Value: binary.LittleEndian.Uint16(b[6:]),
	}, true
}

// Put encodes the header into the first ControlSize bytes of b.
func (c Control) Put(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], c.ID)
	binary.LittleEndian.PutUint16(b[4:], c.Event)
	binary.LittleEndian.PutUint16(b[6:], c.Value)
}

// controlIn handles the driver's control messages. Malformed or
// meaningless messages are returned to the guest and otherwise ignored.
func (d *Device) controlIn() error {
	for {
		ok, err := d.ctrlTx.Next(d.ctrlChain)
		if err != nil && !errors.Is(err, virtio.ErrBadChain) {
			return err
		}
		if !ok && err == nil {
			return nil
		}
		if err == nil {
			d.handleControl(d.ctrlChain)
		} else {
			d.log.Debug("virtio-console: dropping a malformed control request", "err", err)
		}
		if err := d.addUsed(ctrlTxQueue, d.ctrlChain.Head(), 0); err != nil {
			return err
		}
	}
}

// handleControl applies one control message from the driver.
func (d *Device) handleControl(c *virtio.DescriptorChain) {
	var raw [ControlSize]byte
	n, _ := c.ReadAt(raw[:], 0)
	msg, ok := ParseControl(raw[:n])
	if !ok {
		d.log.Debug("virtio-console: short control message", "bytes", n)
		return
	}
	if msg.Event == EventDeviceReady {
		if msg.Value == 0 {
			d.log.Warn("virtio-console: the guest driver failed to set up the device")
			return
		}
		for _, p := range d.ports {
			if p != nil {
				p.needAdd = true
			}
		}
		return
	}
	p := d.portByID(msg.ID)
	if p == nil {
		d.log.Debug("virtio-console: control message for an unknown port", "id", msg.ID, "event", msg.Event)
		return
	}
	switch msg.Event {
	case EventPortReady:
		if msg.Value == 0 {
			d.log.Warn("virtio-console: the guest driver failed to add a port", "port", p.id, "name", p.name)
			return
		}
		// A new guest port starts with the host side closed: tell it
		// the truth again.
		p.ready, p.hostOpen = true, false
		p.needConsole, p.needName = p.console, p.name != ""
	case EventPortOpen:
		open := msg.Value != 0
		if open == p.guestOpen {
			return
		}
		p.guestOpen = open
		if p.name != "" {
			d.log.Info("virtio-console: guest changed a channel's state", "name", p.name, "open", open)
			if d.cfg.OnPortOpen != nil {
				d.cfg.OnPortOpen(p.name, open)
			}
		}
	default:
		d.log.Debug("virtio-console: ignoring a control message", "port", p.id, "event", msg.Event)
	}
}

// portByID returns the port with the given id, or nil.
func (d *Device) portByID(id uint32) *port {
	if uint64(id) >= uint64(len(d.ports)) {
		return nil
	}
	return d.ports[id]
}

// controlOut sends the device's pending control messages while the driver
// has control buffers posted. Each port's messages go in order: PORT_ADD,
// CONSOLE_PORT, PORT_NAME, PORT_OPEN; PORT_OPEN carries the host state at
// the time it is sent, so a quick connect and disconnect is one message.
func (d *Device) controlOut() error {
	for _, p := range d.ports {
		if p == nil {
			continue
		}
		for {
			msg, name := d.nextControl(p)
			if msg.Event == noEvent {
				break
			}
			ok, err := d.ctrlRx.Next(d.ctrlChain)
			if errors.Is(err, virtio.ErrBadChain) {
				d.log.Debug("virtio-console: dropping a malformed control buffer", "err", err)
				if err := d.addUsed(ctrlRxQueue, d.ctrlChain.Head(), 0); err != nil {
					return err
				}
				continue
			}
			if err != nil || !ok {
				return err
			}
			if d.ctrlChain.WritableLen() < ControlSize {
				// Too small for any message: return it empty and use
				// the next one.
				if err := d.addUsed(ctrlRxQueue, d.ctrlChain.Head(), 0); err != nil {
					return err
				}
				continue
			}
			msg.Put(d.ctrlBuf[:])
			n := ControlSize
			if name {
				n += copy(d.ctrlBuf[ControlSize:], p.name)
			}
			if _, err := d.ctrlChain.Write(d.ctrlBuf[:n]); err != nil && !errors.Is(err, io.ErrShortWrite) {
				return err
			}
			if err := d.addUsed(ctrlRxQueue, d.ctrlChain.Head(), d.ctrlChain.Written()); err != nil {
				return err
			}
			d.sentControl(p, msg)
		}
	}
	return nil
}

// noEvent marks the absence of a pending message.
const noEvent = 0xffff

// nextControl returns the port's next pending message and whether the
// port's name follows it.
func (d *Device) nextControl(p *port) (Control, bool) {
	id := uint32(p.id)
	switch {
	case p.needAdd:
		return Control{ID: id, Event: EventPortAdd, Value: 1}, false
	case !p.ready:
		return Control{Event: noEvent}, false
	case p.needConsole:
		return Control{ID: id, Event: EventConsolePort, Value: 1}, false
	case p.needName:
		return Control{ID: id, Event: EventPortName, Value: 1}, true
	}
	if open := p.end.connected(); open != p.hostOpen {
		var v uint16
		if open {
			v = 1
		}
		return Control{ID: id, Event: EventPortOpen, Value: v}, false
	}
	return Control{Event: noEvent}, false
}

// sentControl records that msg reached the guest.
func (d *Device) sentControl(p *port, msg Control) {
	switch msg.Event {
	case EventPortAdd:
		p.needAdd = false
	case EventConsolePort:
		p.needConsole = false
	case EventPortName:
		p.needName = false
	case EventPortOpen:
		p.hostOpen = msg.Value != 0
	}
}
