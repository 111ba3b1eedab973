package legacy

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/vireo-vmm/vireo/internal/irq"
)

// Offsets from the controller's base port (0x60).
const (
	i8042Data    = 0  // port 0x60
	i8042Port61  = 1  // port 0x61, system control port B
	i8042Status  = 4  // port 0x64: status (read), command (write)
	i8042OutSize = 16 // output buffer depth
)

// Status register bits.
const (
	kbdStatOBF    = 0x01 // output buffer full
	kbdStatSys    = 0x04 // system flag: self test passed
	kbdStatCmd    = 0x08 // last write went to the command port
	kbdStatUnlock = 0x10 // keyboard not inhibited by the key lock
)

// Controller command byte (CTR) bits.
const (
	ctrKbdInt = 0x01
	ctrSys    = 0x04
	ctrKbdDis = 0x10
	ctrAuxDis = 0x20
	ctrXlate  = 0x40
)

// Controller commands.
const (
	cmdReadCTR      = 0x20
	cmdWriteCTR     = 0x60
	cmdAuxDisable   = 0xa7
	cmdAuxEnable    = 0xa8
	cmdAuxTest      = 0xa9
	cmdSelfTest     = 0xaa
	cmdKbdTest      = 0xab
	cmdKbdDisable   = 0xad
	cmdKbdEnable    = 0xae
	cmdReadOutPort  = 0xd0
	cmdWriteOutPort = 0xd1
	cmdWriteKbdOut  = 0xd2
	cmdWriteAuxOut  = 0xd3
	cmdWriteAux     = 0xd4
	cmdReadTest     = 0xe0
	cmdPulseFirst   = 0xf0 // 0xf0-0xff pulse output lines; bit 0 clear pulses reset
)

// Keyboard replies and commands.
const (
	kbdAck      = 0xfa
	kbdBATOK    = 0xaa
	kbdEcho     = 0xee
	kbdSetLEDs  = 0xed
	kbdScanSet  = 0xf0
	kbdGetID    = 0xf2
	kbdTypemat  = 0xf3
	kbdEnable   = 0xf4
	kbdDisable  = 0xf5
	kbdReset    = 0xff
	auxStuckClk = 0x01 // AUX interface test: clock line stuck low
)

// Power-on values: keyboard interrupt on, system flag set, translation
// to scan code set 1 on (as a PC BIOS leaves it), AUX port disabled.
const (
	ctrDefault     = ctrKbdInt | ctrSys | ctrXlate | ctrAuxDis
	outPortDefault = 0x03 // reset line inactive, A20 enabled
)

// Ctrl+Alt+Del make and break codes in scan code set 2, and the same keys
// as the controller delivers them with translation to set 1 on.
var (
	ctrlAltDelSet2 = [...]byte{0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14}
	ctrlAltDelSet1 = [...]byte{0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d}
)

// I8042 is enough of a PS/2 keyboard controller with a keyboard behind it
// for a guest to probe it without long timeouts, reset the machine through
// it (command 0xfe, Linux's reboot=k) and receive Ctrl+Alt+Del.
//
// The AUX (mouse) channel is not wired: its loopback command returns the
// byte on the keyboard channel and its interface test reports a stuck
// clock line, so Linux gives up on a mouse at once instead of waiting for
// an IRQ 12 that never comes. Port 0x61 (offset 1) answers as system
// control port B for guests without an in-kernel PIT.
type I8042 struct {
	mu       sync.Mutex
	reset    func()
	line     irq.Line // IRQ 1, may be nil
	lineHigh bool

	ctr      byte
	outPort  byte
	status   byte // kbdStatSys and kbdStatCmd; the rest is computed
	pending  byte // controller command waiting for its data byte, 0 if none
	kbdParam byte // keyboard command waiting for its parameter, 0 if none
	scanning bool // keyboard enabled (0xf4) rather than disabled (0xf5)
	port61   byte
	out      ring // output buffer contents, oldest first
}

// NewI8042 returns a controller in its power-on state. reset is called
// (outside the controller's lock) when the guest pulses the CPU reset
// line; it may be nil.
func NewI8042(reset func()) *I8042 {
	return &I8042{
		reset:    reset,
		ctr:      ctrDefault,
		outPort:  outPortDefault,
		status:   kbdStatSys,
		scanning: true,
		out:      newRing(i8042OutSize),
	}
}

// SetKeyboardIRQ attaches the keyboard interrupt (IRQ 1) and drives it to
// the current level. Without a line, output is available only by polling.
func (k *I8042) SetKeyboardIRQ(line irq.Line) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.line = line
	k.driveLine(k.level())
}

// SendCtrlAltDel queues the key presses and releases of Ctrl+Alt+Del and
// raises the keyboard interrupt, asking the guest to reboot. It fails with
// ErrBufferFull when the guest has left too much unread output.
func (k *I8042) SendCtrlAltDel() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	seq := ctrlAltDelSet2[:]
	if k.ctr&ctrXlate != 0 {
		seq = ctrlAltDelSet1[:]
	}
	if k.out.free() < len(seq) {
		return fmt.Errorf("%w: keyboard output holds %d bytes", ErrBufferFull, k.out.len())
	}
	k.out.write(seq)
	k.updateIRQ(false)
	return nil
}

// Read implements bus.Device.
func (k *I8042) Read(off uint64, data []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range data {
		data[i] = 0xff
	}
	if len(data) == 0 {
		return
	}
	switch off {
	case i8042Data:
		b, ok := k.out.pop()
		if ok {
			data[0] = b
		} else {
			data[0] = 0
		}
		// Drop the line between bytes so an edge-triggered interrupt
		// fires again for the next one, as the real controller does.
		k.updateIRQ(ok)
	case i8042Port61:
		// Refresh toggles on every read; timer 2 output reads high so a
		// calibration loop waiting for it ends.
		k.port61 ^= 0x10
		data[0] = k.port61&0x1f | 0x20
	case i8042Status:
		data[0] = k.statusByte()
	}
}

// Write implements bus.Device.
func (k *I8042) Write(off uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	k.mu.Lock()
	var doReset bool
	switch off {
	case i8042Data:
		k.status &^= kbdStatCmd
		doReset = k.writeData(data[0])
	case i8042Port61:
		k.port61 = k.port61&0x10 | data[0]&0x0f
	case i8042Status:
		k.status |= kbdStatCmd
		doReset = k.command(data[0])
	}
	k.updateIRQ(false)
	reset := k.reset
	k.mu.Unlock()
	if doReset && reset != nil {
		reset()
	}
}

func (k *I8042) statusByte() byte {
	v := k.status | kbdStatUnlock
	if k.out.len() > 0 {
		v |= kbdStatOBF
	}
	return v
}

// command runs a controller command and reports whether it resets the CPU.
func (k *I8042) command(c byte) bool {
	k.pending = 0
	switch {
	case c == cmdReadCTR:
		k.queue(k.ctr)
	case c == cmdWriteCTR, c == cmdWriteOutPort, c == cmdWriteKbdOut,
		c == cmdWriteAuxOut, c == cmdWriteAux:
		k.pending = c
	case c == cmdAuxDisable:
		k.ctr |= ctrAuxDis
	case c == cmdAuxEnable:
		k.ctr &^= ctrAuxDis
	case c == cmdAuxTest:
		k.queue(auxStuckClk)
	case c == cmdSelfTest:
		k.status |= kbdStatSys
		k.queue(0x55)
	case c == cmdKbdTest:
		k.queue(0x00)
	case c == cmdKbdDisable:
		k.ctr |= ctrKbdDis
	case c == cmdKbdEnable:
		k.ctr &^= ctrKbdDis
	case c == cmdReadOutPort:
		k.queue(k.outPort)
	case c == cmdReadTest:
		k.queue(0x00)
	case c >= cmdPulseFirst:
		return c&0x01 == 0
	}
	// Other commands (controller RAM, password, versions) are ignored.
	return false
}

// writeData handles a byte written to port 0x60 and reports whether it
// resets the CPU.
func (k *I8042) writeData(v byte) bool {
	cmd := k.pending
	k.pending = 0
	switch cmd {
	case cmdWriteCTR:
		k.ctr = v
		// The system flag in the status register follows CTR bit 2.
		k.status = k.status&^kbdStatSys | v&ctrSys
	case cmdWriteOutPort:
		k.outPort = v | 0x01
		return v&0x01 == 0
	case cmdWriteKbdOut, cmdWriteAuxOut:
		k.queue(v)
	case cmdWriteAux:
		// No AUX device: the byte is dropped.
	default:
		k.keyboard(v)
	}
	return false
}

// keyboard models the keyboard's replies to a command byte.
func (k *I8042) keyboard(v byte) {
	if p := k.kbdParam; p != 0 {
		k.kbdParam = 0
		k.queue(kbdAck)
		if p == kbdScanSet && v == 0 {
			k.queue(0x02) // current scan code set
		}
		return
	}
	switch v {
	case kbdSetLEDs, kbdScanSet, kbdTypemat:
		k.kbdParam = v
		k.queue(kbdAck)
	case kbdEcho:
		k.queue(kbdEcho)
	case kbdGetID:
		k.queue(kbdAck)
		k.queue(0xab)
		if k.ctr&ctrXlate != 0 {
			k.queue(0x41)
		} else {
			k.queue(0x83)
		}
	case kbdEnable:
		k.scanning = true
		k.queue(kbdAck)
	case kbdDisable:
		k.scanning = false
		k.queue(kbdAck)
	case kbdReset:
		k.scanning = true
		k.queue(kbdAck)
		k.queue(kbdBATOK)
	default:
		k.queue(kbdAck)
	}
}

// queue appends a byte to the output buffer, dropping it when full (a
// guest that never reads cannot grow it).
func (k *I8042) queue(b byte) { k.out.push(b) }

func (k *I8042) level() bool { return k.out.len() > 0 && k.ctr&ctrKbdInt != 0 }

// updateIRQ drives IRQ 1 when its level changed. pulse forces a low
// then high transition when the level stays high after a byte was read.
func (k *I8042) updateIRQ(pulse bool) {
	l := k.level()
	if pulse && l && k.lineHigh {
		k.driveLine(false)
	}
	if l != k.lineHigh {
		k.driveLine(l)
	}
}

func (k *I8042) driveLine(l bool) {
	k.lineHigh = l
	if k.line == nil {
		return
	}
	if err := k.line.SetLevel(l); err != nil {
		slog.Debug("i8042: cannot set interrupt line", "err", err)
	}
}
