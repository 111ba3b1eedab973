package legacy

// Register offsets from the UART's base port.
const (
	uartRBR = 0 // receive buffer (read), transmit holding (write), DLL when DLAB=1
	uartIER = 1 // interrupt enable, DLM when DLAB=1
	uartIIR = 2 // interrupt identification (read), FIFO control (write)
	uartLCR = 3 // line control
	uartMCR = 4 // modem control
	uartLSR = 5 // line status
	uartMSR = 6 // modem status
	uartSCR = 7 // scratch
)

// Interrupt enable register bits.
const (
	ierERBFI = 0x01 // received data available
	ierETBEI = 0x02 // transmitter holding register empty
	ierELSI  = 0x04 // receiver line status
	ierEDSSI = 0x08 // modem status
	ierMask  = 0x0f
)

// Interrupt identification values (bits 0-3) and the FIFO flag bits.
const (
	iirNone    = 0x01
	iirMSR     = 0x00
	iirTHRE    = 0x02
	iirRDA     = 0x04
	iirRLS     = 0x06
	iirTimeout = 0x0c
	iirFIFO    = 0xc0
)

// FIFO control register bits.
const (
	fcrEnable  = 0x01
	fcrClearRX = 0x02
	fcrTrigger = 0xc0
)

// Line control, modem control, line status and modem status bits.
const (
	lcrDLAB = 0x80

	mcrDTR  = 0x01
	mcrRTS  = 0x02
	mcrOUT1 = 0x04
	mcrOUT2 = 0x08
	mcrLoop = 0x10
	mcrMask = 0x1f

	lsrDR   = 0x01
	lsrOE   = 0x02
	lsrTHRE = 0x20
	lsrTEMT = 0x40
	// lsrErrMask covers the error bits cleared by reading LSR (OE, PE, FE, BI).
	lsrErrMask = 0x1e

	msrDCTS = 0x01
	msrDDSR = 0x02
	msrTERI = 0x04
	msrDDCD = 0x08
	msrCTS  = 0x10
	msrDSR  = 0x20
	msrRI   = 0x40
	msrDCD  = 0x80
	// msrDeltaMask covers the change bits cleared by reading MSR.
	msrDeltaMask = 0x0f
)

// Buffer sizes.
const (
	// RXFIFOSize is the depth of the 16550A receive FIFO.
	RXFIFOSize = 16
	// SerialInputBuffer bounds host input accepted by Enqueue and not yet
	// moved into the receive FIFO.
	SerialInputBuffer = 64 << 10
	// SerialOutputBuffer bounds guest output waiting for the host writer.
	// While it is full the UART reports its transmitter busy.
	SerialOutputBuffer = 4 << 10
)
