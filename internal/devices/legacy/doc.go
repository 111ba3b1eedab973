// Package legacy emulates the PC platform devices a guest kernel probes on
// port I/O: the 16550A UART, the i8042 keyboard controller, the CMOS
// real-time clock, the POST/boot-marker debug port and a sink for ports
// that only need to answer.
//
// Every device implements bus.Device with offsets relative to the base
// port it is inserted at, is safe for concurrent use by several vCPU
// goroutines and host-side goroutines, does not allocate on the vCPU
// path, and exposes its guest-visible state as a plain-data value
// (State/Restore) for snapshots.
package legacy

import "errors"

// Sizes of the port ranges the devices decode, for bus.Insert at the PC
// addresses given.
const (
	SerialSize    = 8 // 16550A: COM1 at 0x3f8 (IRQ 4), COM2 at 0x2f8 (IRQ 3)
	I8042Size     = 5 // 0x60-0x64 (IRQ 1); offset 1 is port 0x61
	RTCSize       = 2 // 0x70-0x71
	DebugPortSize = 1 // 0x80
)

// ErrBadState reports a saved device state that cannot be restored
// (a buffer longer than the device can hold, for example).
var ErrBadState = errors.New("legacy: invalid device state")

// ErrBufferFull reports host input that does not fit in a device buffer.
var ErrBufferFull = errors.New("legacy: device buffer full")
