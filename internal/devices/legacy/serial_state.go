package legacy

import "fmt"

// SerialState is the guest-visible state of a Serial as plain data.
// Bytes queued for the host output are not part of it: call Flush first.
type SerialState struct {
	IER, LCR, MCR, SCR, DLL, DLM byte
	// FCR holds the FIFO enable and trigger-level bits (0: FIFOs off).
	FCR byte
	// LSRErrors holds the sticky line-status error bits (overrun...).
	LSRErrors byte
	// MSRDelta holds the modem-status change bits not yet read.
	MSRDelta byte
	// THRInterrupt is set while a THR-empty interrupt is pending.
	THRInterrupt bool
	// RXFIFO is the receive FIFO, oldest byte first.
	RXFIFO []byte
	// HostInput is host input accepted but not yet in the FIFO.
	HostInput []byte
}

// State returns a copy of the UART's state.
func (s *Serial) State() SerialState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SerialState{
		IER: s.ier, LCR: s.lcr, MCR: s.mcr, SCR: s.scr, DLL: s.dll, DLM: s.dlm,
		FCR:          s.fcr,
		LSRErrors:    s.lsrErr,
		MSRDelta:     s.msrDelta,
		THRInterrupt: s.thrPending,
		RXFIFO:       s.rx.bytes(),
		HostInput:    s.host.bytes(),
	}
}

// Restore replaces the UART's state with st and drives the interrupt line
// to match it. Reserved register bits are dropped; buffers longer than
// the UART holds are rejected with ErrBadState and leave s unchanged.
func (s *Serial) Restore(st SerialState) error {
	fcr := st.FCR & (fcrEnable | fcrTrigger)
	if fcr&fcrEnable == 0 {
		fcr = 0
	}
	capacity := 1
	if fcr != 0 {
		capacity = RXFIFOSize
	}
	if len(st.RXFIFO) > capacity {
		return fmt.Errorf("%w: serial receive FIFO holds %d bytes, at most %d", ErrBadState, len(st.RXFIFO), capacity)
	}
	if len(st.HostInput) > SerialInputBuffer {
		return fmt.Errorf("%w: serial input buffer holds %d bytes, at most %d", ErrBadState, len(st.HostInput), SerialInputBuffer)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ier, s.lcr, s.mcr, s.scr = st.IER&ierMask, st.LCR, st.MCR&mcrMask, st.SCR
	s.dll, s.dlm, s.fcr = st.DLL, st.DLM, fcr
	s.lsrErr = st.LSRErrors & lsrErrMask
	s.msrDelta = st.MSRDelta & msrDeltaMask
	s.thrPending = st.THRInterrupt && s.ier&ierETBEI != 0 && s.thrEmpty()
	s.rx.load(st.RXFIFO)
	s.host.load(st.HostInput)
	s.refillRX()
	s.driveLine(s.level())
	return nil
}
