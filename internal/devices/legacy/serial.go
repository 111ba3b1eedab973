package legacy

import (
	"io"
	"log/slog"
	"sync"

	"github.com/vireo-vmm/vireo/internal/irq"
)

// Serial is a 16550A UART.
//
// Bytes the guest transmits are queued in a bounded buffer and written to
// the output by a goroutine of the UART's own, so a slow or blocked host
// writer never stalls a vCPU; while that buffer is full the guest sees the
// transmitter busy (flow control rather than loss). Host input queued with
// Enqueue waits in a bounded buffer and moves into the 16-byte receive FIFO
// as the guest drains it, so no input is lost to FIFO overruns.
//
// The interrupt line reflects "an enabled interrupt is pending" gated by
// MCR.OUT2, as on a PC, and is driven only when that level changes.
type Serial struct {
	mu   sync.Mutex
	line irq.Line
	out  io.Writer

	ier, lcr, mcr, scr, dll, dlm byte
	fcr                          byte // FIFO enable and trigger bits; 0 when FIFOs are off
	lsrErr                       byte // sticky line-status error bits
	msrDelta                     byte // modem-status change bits
	thrPending                   bool // THR-empty interrupt armed and not yet acknowledged

	lineHigh  bool // level last driven on line
	lineFault bool // a SetLevel error has been logged

	rx   ring // receive FIFO
	host ring // host input not yet in the FIFO
	tx   ring // transmitted bytes not yet written to out

	// Output writer goroutine.
	kick    chan struct{} // non-blocking wake-up after a THR write
	stop    chan struct{} // closed by Close
	exited  chan struct{} // closed when the writer has drained and exited
	idle    sync.Cond     // signalled when tx is empty and nothing is being written
	writing bool          // the writer holds bytes taken from tx
	closed  bool
	scratch [512]byte // writer-owned copy of bytes being written
	once    sync.Once
}

// NewSerial returns a UART in its power-on state that raises line and
// writes transmitted bytes to out (io.Discard drops them; write errors are
// ignored). It starts the output goroutine: call Close when done.
func NewSerial(line irq.Line, out io.Writer) *Serial {
	if line == nil {
		line = irq.Nop{}
	}
	if out == nil {
		out = io.Discard
	}
	s := &Serial{
		line:   line,
		out:    out,
		rx:     newRing(RXFIFOSize),
		host:   newRing(SerialInputBuffer),
		tx:     newRing(SerialOutputBuffer),
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	s.idle.L = &s.mu
	go s.writer()
	return s
}

// Read implements bus.Device. Wider accesses read consecutive registers.
func (s *Serial) Read(off uint64, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range data {
		r := off + uint64(i)
		if r >= SerialSize {
			data[i] = 0xff
			continue
		}
		data[i] = s.readReg(r)
	}
	s.updateIRQ()
}

// Write implements bus.Device. Wider accesses write consecutive registers.
func (s *Serial) Write(off uint64, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range data {
		r := off + uint64(i)
		if r >= SerialSize {
			break
		}
		s.writeReg(r, v)
	}
	s.updateIRQ()
}

// Enqueue offers host input to the guest and returns how many bytes of p
// were accepted; the rest did not fit in the bounded input buffer and
// should be offered again once the guest has read some.
func (s *Serial) Enqueue(p []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.host.write(p)
	s.refillRX()
	s.updateIRQ()
	return n
}

func (s *Serial) dlab() bool        { return s.lcr&lcrDLAB != 0 }
func (s *Serial) loopback() bool    { return s.mcr&mcrLoop != 0 }
func (s *Serial) fifoEnabled() bool { return s.fcr&fcrEnable != 0 }

// rxCapacity is the receive FIFO depth: 16 with FIFOs on, one (the
// receive buffer register alone) with them off.
func (s *Serial) rxCapacity() int {
	if s.fifoEnabled() {
		return RXFIFOSize
	}
	return 1
}

// triggerLevel is the FIFO fill that raises a data-available interrupt.
func (s *Serial) triggerLevel() int {
	switch s.fcr >> 6 {
	case 1:
		return 4
	case 2:
		return 8
	case 3:
		return 14
	}
	return 1
}

func (s *Serial) readReg(r uint64) byte {
	switch r {
	case uartRBR:
		if s.dlab() {
			return s.dll
		}
		b, _ := s.rx.pop()
		s.refillRX()
		return b
	case uartIER:
		if s.dlab() {
			return s.dlm
		}
		return s.ier
	case uartIIR:
		id, ok := s.pending()
		if !ok {
			id = iirNone
		} else if id == iirTHRE {
			// Reading IIR acknowledges a THR-empty interrupt it reports.
			s.thrPending = false
		}
		if s.fifoEnabled() {
			id |= iirFIFO
		}
		return id
	case uartLCR:
		return s.lcr
	case uartMCR:
		return s.mcr
	case uartLSR:
		v := s.lsr()
		s.lsrErr = 0
		return v
	case uartMSR:
		v := s.modemStatus() | s.msrDelta
		s.msrDelta = 0
		return v
	default: // uartSCR
		return s.scr
	}
}

func (s *Serial) writeReg(r uint64, v byte) {
	switch r {
	case uartRBR:
		if s.dlab() {
			s.dll = v
			return
		}
		s.transmit(v)
	case uartIER:
		if s.dlab() {
			s.dlm = v
			return
		}
		s.writeIER(v)
	case uartIIR:
		s.writeFCR(v)
	case uartLCR:
		s.lcr = v
	case uartMCR:
		s.writeMCR(v)
	case uartLSR, uartMSR:
		// Factory-test writes; ignored as by most emulated UARTs.
	default: // uartSCR
		s.scr = v
	}
}

// transmit handles a THR write.
func (s *Serial) transmit(v byte) {
	if s.loopback() {
		s.receive(v)
	} else if !s.closed && s.tx.push(v) {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	// The byte left THR at once, so THR is empty again unless the
	// output buffer is full; writing THR acknowledges the previous
	// THR-empty interrupt and, as on hardware, the emptied THR raises
	// the next one.
	s.thrPending = s.ier&ierETBEI != 0 && s.thrEmpty()
}

// receive puts a byte looped back from the transmitter into the FIFO.
func (s *Serial) receive(v byte) {
	if s.rx.len() < s.rxCapacity() {
		s.rx.push(v)
		return
	}
	s.lsrErr |= lsrOE
	if !s.fifoEnabled() {
		// Without FIFOs the new character overwrites the holding register.
		s.rx.pop()
		s.rx.push(v)
	}
}

func (s *Serial) writeIER(v byte) {
	old := s.ier
	s.ier = v & ierMask
	switch {
	case s.ier&ierETBEI == 0:
		s.thrPending = false
	case old&ierETBEI == 0 && s.thrEmpty():
		// Enabling the THR-empty interrupt while THR is empty raises it,
		// even if an earlier one was acknowledged; Linux's 8250 driver
		// depends on this to restart transmission.
		s.thrPending = true
	}
}

func (s *Serial) writeFCR(v byte) {
	enable := v&fcrEnable != 0
	if enable != s.fifoEnabled() {
		// Switching FIFO mode empties the FIFO.
		s.rx.reset()
	}
	if !enable {
		s.fcr = 0
	} else {
		s.fcr = v & (fcrEnable | fcrTrigger)
		if v&fcrClearRX != 0 {
			s.rx.reset()
		}
	}
	// Transmit-FIFO reset has nothing to discard: bytes already left THR.
	s.refillRX()
}

func (s *Serial) writeMCR(v byte) {
	before := s.modemStatus()
	wasLoop := s.loopback()
	s.mcr = v & mcrMask
	after := s.modemStatus()
	changed := before ^ after
	if changed&msrCTS != 0 {
		s.msrDelta |= msrDCTS
	}
	if changed&msrDSR != 0 {
		s.msrDelta |= msrDDSR
	}
	if changed&msrDCD != 0 {
		s.msrDelta |= msrDDCD
	}
	if before&msrRI != 0 && after&msrRI == 0 {
		s.msrDelta |= msrTERI
	}
	if wasLoop && !s.loopback() {
		// The receiver is reconnected to the host side.
		s.refillRX()
	}
}

// thrEmpty reports whether THR can take a byte.
func (s *Serial) thrEmpty() bool { return s.loopback() || !s.tx.full() }

func (s *Serial) lsr() byte {
	v := s.lsrErr
	if s.rx.len() > 0 {
		v |= lsrDR
	}
	if s.thrEmpty() {
		// Queued output counts as sent: reporting the transmitter busy
		// while the host writer catches up would make the guest poll.
		v |= lsrTHRE | lsrTEMT
	}
	return v
}

// modemStatus returns the MSR status bits (without change bits). In
// loopback the modem outputs drive the inputs; otherwise the line is
// always ready (CTS, DSR and DCD asserted).
func (s *Serial) modemStatus() byte {
	if !s.loopback() {
		return msrCTS | msrDSR | msrDCD
	}
	var v byte
	if s.mcr&mcrRTS != 0 {
		v |= msrCTS
	}
	if s.mcr&mcrDTR != 0 {
		v |= msrDSR
	}
	if s.mcr&mcrOUT1 != 0 {
		v |= msrRI
	}
	if s.mcr&mcrOUT2 != 0 {
		v |= msrDCD
	}
	return v
}

// refillRX moves host input into the receive FIFO while it has room.
// In loopback the receiver is disconnected from the host side.
func (s *Serial) refillRX() {
	if s.loopback() {
		return
	}
	for s.rx.len() < s.rxCapacity() {
		b, ok := s.host.pop()
		if !ok {
			return
		}
		s.rx.push(b)
	}
}

// pending returns the highest-priority enabled interrupt source.
// Priority: receiver line status, received data, THR empty, modem status.
func (s *Serial) pending() (id byte, ok bool) {
	switch {
	case s.ier&ierELSI != 0 && s.lsrErr != 0:
		return iirRLS, true
	case s.ier&ierERBFI != 0 && s.rx.len() > 0:
		if s.fifoEnabled() && s.rx.len() < s.triggerLevel() {
			// Below the trigger level the 16550A reports a character
			// timeout; input arrives in bursts, so report it at once.
			return iirTimeout, true
		}
		return iirRDA, true
	case s.ier&ierETBEI != 0 && s.thrPending:
		return iirTHRE, true
	case s.ier&ierEDSSI != 0 && s.msrDelta != 0:
		return iirMSR, true
	}
	return iirNone, false
}

// level is the interrupt output: a pending enabled interrupt, gated by
// OUT2 as the PC's interrupt buffer does.
func (s *Serial) level() bool {
	_, ok := s.pending()
	return ok && s.mcr&mcrOUT2 != 0
}

// updateIRQ drives the line when the level changed. Called with mu held,
// so levels reach the line in order.
func (s *Serial) updateIRQ() {
	if l := s.level(); l != s.lineHigh {
		s.driveLine(l)
	}
}

func (s *Serial) driveLine(l bool) {
	s.lineHigh = l
	if err := s.line.SetLevel(l); err != nil && !s.lineFault {
		s.lineFault = true
		slog.Warn("serial: cannot set interrupt line", "err", err)
	}
}
