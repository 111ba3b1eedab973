package legacy

import (
	"bytes"
	"io"
	"sync"
	"testing"
	"time"
)

func newTestSerial(t *testing.T) (*Serial, *fakeLine, *syncBuffer) {
	t.Helper()
	line := &fakeLine{}
	out := &syncBuffer{}
	s := NewSerial(line, out)
	t.Cleanup(func() { s.Close() })
	return s, line, out
}

func expect(t *testing.T, what string, got, want byte) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %#02x, want %#02x", what, got, want)
	}
}

func expectLine(t *testing.T, l *fakeLine, want bool) {
	t.Helper()
	if got := l.level(); got != want {
		t.Fatalf("interrupt line = %v, want %v", got, want)
	}
}

func TestSerialResetState(t *testing.T) {
	s, line, _ := newTestSerial(t)
	expect(t, "IIR", rd(s, uartIIR), 0x01)
	expect(t, "LSR", rd(s, uartLSR), lsrTHRE|lsrTEMT)
	expect(t, "MSR", rd(s, uartMSR), msrCTS|msrDSR|msrDCD)
	expect(t, "IER", rd(s, uartIER), 0)
	expectLine(t, line, false)
}

func TestSerialTHREInterrupt(t *testing.T) {
	s, line, out := newTestSerial(t)
	wr(s, uartMCR, mcrOUT2)
	wr(s, uartIER, ierETBEI)
	expectLine(t, line, true)
	expect(t, "IIR", rd(s, uartIIR), 0x02)
	expectLine(t, line, false)
	expect(t, "IIR after ack", rd(s, uartIIR), 0x01)

	wr(s, uartRBR, 'A')
	expectLine(t, line, true)
	expect(t, "IIR after THR write", rd(s, uartIIR), 0x02)
	expectLine(t, line, false)

	wr(s, uartIER, 0)
	wr(s, uartRBR, 'B')
	expectLine(t, line, false)
	s.Flush()
	if got := out.String(); got != "AB" {
		t.Fatalf("output %q, want %q", got, "AB")
	}
}

// TestSerialTHRERearm follows the THRE test of Linux's 8250 startup: a UART
// must raise THR-empty again each time IER.ETBEI is set.
func TestSerialTHRERearm(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, uartIIR, fcrEnable)
	wr(s, uartIER, ierETBEI)
	expect(t, "IIR", rd(s, uartIIR), 0xc2)
	expect(t, "IIR after ack", rd(s, uartIIR), 0xc1)
	wr(s, uartIER, 0)
	wr(s, uartIER, ierETBEI)
	expect(t, "IIR after re-enable", rd(s, uartIIR), 0xc2)
	// Rewriting IER with ETBEI already set does not raise it again.
	wr(s, uartIER, ierETBEI|ierERBFI)
	expect(t, "IIR after rewrite", rd(s, uartIIR), 0xc1)
}

func TestSerialOUT2GatesLine(t *testing.T) {
	s, line, _ := newTestSerial(t)
	wr(s, uartIER, ierETBEI)
	expectLine(t, line, false)
	wr(s, uartMCR, mcrOUT2)
	expectLine(t, line, true)
	wr(s, uartMCR, 0)
	expectLine(t, line, false)
	expect(t, "IIR", rd(s, uartIIR), 0x02)
}

func TestSerialReceive(t *testing.T) {
	s, line, _ := newTestSerial(t)
	wr(s, uartMCR, mcrOUT2)
	wr(s, uartIER, ierERBFI)
	if n := s.Enqueue([]byte("ab")); n != 2 {
		t.Fatalf("Enqueue accepted %d bytes, want 2", n)
	}
	expectLine(t, line, true)
	expect(t, "IIR", rd(s, uartIIR), 0x04)
	expect(t, "LSR", rd(s, uartLSR)&lsrDR, lsrDR)
	expect(t, "RBR", rd(s, uartRBR), 'a')
	expectLine(t, line, true) // 'b' moved into the holding register
	expect(t, "RBR", rd(s, uartRBR), 'b')
	expectLine(t, line, false)
	expect(t, "IIR", rd(s, uartIIR), 0x01)
	expect(t, "LSR", rd(s, uartLSR)&lsrDR, 0)
}

func TestSerialFIFO(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, uartIIR, fcrEnable|0xc0) // trigger level 14
	wr(s, uartIER, ierERBFI)
	input := []byte("0123456789abcdefghij") // 20 bytes: 16 in the FIFO, 4 waiting
	s.Enqueue(input[:3])
	expect(t, "IIR below trigger", rd(s, uartIIR), 0xcc)
	s.Enqueue(input[3:])
	expect(t, "IIR at trigger", rd(s, uartIIR), 0xc4)
	if got := s.rx.len(); got != RXFIFOSize {
		t.Fatalf("FIFO holds %d bytes, want %d", got, RXFIFOSize)
	}
	var got []byte
	for rd(s, uartLSR)&lsrDR != 0 {
		got = append(got, rd(s, uartRBR))
	}
	if !bytes.Equal(got, input) {
		t.Fatalf("received %q, want %q", got, input)
	}
	expect(t, "LSR", rd(s, uartLSR)&lsrOE, 0)
}

func TestSerialFIFOReset(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, uartMCR, mcrLoop)
	wr(s, uartIIR, fcrEnable)
	wr(s, uartRBR, 'x')
	expect(t, "LSR", rd(s, uartLSR)&lsrDR, lsrDR)
	wr(s, uartIIR, fcrEnable|fcrClearRX)
	expect(t, "LSR after reset", rd(s, uartLSR)&lsrDR, 0)
	wr(s, uartRBR, 'y')
	wr(s, uartIIR, 0) // turning FIFOs off empties them too
	expect(t, "LSR after disable", rd(s, uartLSR)&lsrDR, 0)
	expect(t, "IIR", rd(s, uartIIR), 0x01)
}

func TestSerialLoopback(t *testing.T) {
	s, _, out := newTestSerial(t)
	wr(s, uartMCR, mcrLoop|mcrRTS|mcrOUT2)
	expect(t, "MSR", rd(s, uartMSR)&0xf0, msrCTS|msrDCD)
	wr(s, uartRBR, 'x')
	expect(t, "LSR", rd(s, uartLSR)&lsrDR, lsrDR)
	expect(t, "RBR", rd(s, uartRBR), 'x')
	// Host input waits while the receiver is looped back.
	s.Enqueue([]byte("h"))
	expect(t, "LSR", rd(s, uartLSR)&lsrDR, 0)
	wr(s, uartMCR, 0)
	expect(t, "RBR after loopback", rd(s, uartRBR), 'h')
	s.Flush()
	if out.String() != "" {
		t.Fatalf("loopback leaked %q to the output", out.String())
	}
}

func TestSerialModemStatusInterrupt(t *testing.T) {
	s, line, _ := newTestSerial(t)
	wr(s, uartIER, ierEDSSI)
	wr(s, uartMCR, mcrLoop|mcrOUT2|mcrOUT1)
	// Entering loopback dropped CTS and DSR, DCD stayed (OUT2), RI rose.
	expectLine(t, line, true)
	expect(t, "IIR", rd(s, uartIIR), 0x00)
	expect(t, "MSR", rd(s, uartMSR), msrDCD|msrRI|msrDCTS|msrDDSR)
	expectLine(t, line, false)
	wr(s, uartMCR, mcrLoop|mcrOUT2) // RI falls: trailing edge
	expect(t, "MSR", rd(s, uartMSR), msrDCD|msrTERI)
	expect(t, "IIR", rd(s, uartIIR), 0x01)
}

func TestSerialOverrun(t *testing.T) {
	t.Run("fifo", func(t *testing.T) {
		s, line, _ := newTestSerial(t)
		wr(s, uartIIR, fcrEnable)
		wr(s, uartIER, ierELSI|ierERBFI)
		wr(s, uartMCR, mcrLoop|mcrOUT2)
		for i := 0; i <= RXFIFOSize; i++ {
			wr(s, uartRBR, byte('a'+i))
		}
		expectLine(t, line, true)
		expect(t, "IIR", rd(s, uartIIR), 0xc6)
		expect(t, "LSR", rd(s, uartLSR), lsrDR|lsrOE|lsrTHRE|lsrTEMT)
		expect(t, "LSR after read", rd(s, uartLSR)&lsrOE, 0)
		expect(t, "IIR", rd(s, uartIIR), 0xc4)
		expect(t, "RBR", rd(s, uartRBR), 'a') // the FIFO kept the old bytes
	})
	t.Run("no fifo", func(t *testing.T) {
		s, _, _ := newTestSerial(t)
		wr(s, uartMCR, mcrLoop)
		wr(s, uartRBR, '1')
		wr(s, uartRBR, '2')
		expect(t, "LSR", rd(s, uartLSR)&(lsrDR|lsrOE), lsrDR|lsrOE)
		expect(t, "RBR", rd(s, uartRBR), '2') // overwritten
	})
}

func TestSerialPriority(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, uartMCR, mcrLoop|mcrOUT2)
	wr(s, uartRBR, '1')
	wr(s, uartRBR, '2') // overrun
	wr(s, uartIER, ierMask)
	expect(t, "IIR", rd(s, uartIIR), 0x06)
	rd(s, uartLSR)
	expect(t, "IIR", rd(s, uartIIR), 0x04)
	rd(s, uartRBR)
	expect(t, "IIR", rd(s, uartIIR), 0x02)
	expect(t, "IIR", rd(s, uartIIR), 0x00)
	rd(s, uartMSR)
	expect(t, "IIR", rd(s, uartIIR), 0x01)
}

func TestSerialDivisorLatch(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, uartLCR, lcrDLAB|0x03)
	wr(s, uartRBR, 0x0c)
	wr(s, uartIER, 0x00)
	expect(t, "DLL", rd(s, uartRBR), 0x0c)
	expect(t, "DLM", rd(s, uartIER), 0x00)
	wr(s, uartLCR, 0x03)
	expect(t, "IER", rd(s, uartIER), 0)
	expect(t, "LCR", rd(s, uartLCR), 0x03)
	wr(s, uartSCR, 0x5a)
	expect(t, "SCR", rd(s, uartSCR), 0x5a)
}

// TestSerialLinuxProbe runs the checks Linux's 8250 autoconfig makes to
// recognise a 16550A.
func TestSerialLinuxProbe(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, uartIER, 0)
	expect(t, "IER", rd(s, uartIER), 0)
	wr(s, uartIER, 0x0f)
	expect(t, "IER", rd(s, uartIER), 0x0f)
	wr(s, uartIER, 0x40) // UUE (XScale) must not stick
	expect(t, "IER", rd(s, uartIER), 0)
	wr(s, uartIIR, fcrEnable)
	expect(t, "IIR>>6", rd(s, uartIIR)>>6, 3)
	wr(s, uartIIR, fcrEnable|0x20) // 64-byte FIFO request: no 16750
	expect(t, "IIR>>5", rd(s, uartIIR)>>5, 6)
	wr(s, uartMCR, mcrLoop|0x0a)
	expect(t, "MSR", rd(s, uartMSR)&0xf0, 0x90)
	if rd(s, uartLSR) == 0xff {
		t.Fatal("LSR reads 0xff: no UART")
	}
}

func TestSerialWideAccess(t *testing.T) {
	s, _, _ := newTestSerial(t)
	s.Write(uartLCR, []byte{0x03, mcrOUT2}) // LCR then MCR
	var b [2]byte
	s.Read(uartLCR, b[:])
	if b != [2]byte{0x03, mcrOUT2} {
		t.Fatalf("read %x, want 03 08", b)
	}
	var c [4]byte
	s.Read(6, c[:])
	if c[2] != 0xff || c[3] != 0xff {
		t.Fatalf("read past the UART = %x, want ff ff", c[2:])
	}
	s.Write(9, []byte{1}) // ignored
}

func TestSerialEnqueueBounded(t *testing.T) {
	s, _, _ := newTestSerial(t)
	big := make([]byte, SerialInputBuffer+100)
	n := s.Enqueue(big)
	if n != SerialInputBuffer {
		t.Fatalf("Enqueue accepted %d bytes, want %d", n, SerialInputBuffer)
	}
	// One byte moved into the holding register when the first was
	// accepted, a second when the guest read it.
	rd(s, uartRBR)
	if n := s.Enqueue(big); n != 2 {
		t.Fatalf("after one read Enqueue accepted %d bytes, want 2", n)
	}
}

// gateWriter blocks every Write until released.
type gateWriter struct {
	gate chan struct{}
	buf  syncBuffer
}

func (g *gateWriter) Write(p []byte) (int, error) {
	<-g.gate
	return g.buf.Write(p)
}

func TestSerialOutputBackpressure(t *testing.T) {
	line := &fakeLine{}
	g := &gateWriter{gate: make(chan struct{})}
	s := NewSerial(line, g)
	wr(s, uartMCR, mcrOUT2)
	// Fill the buffer plus what the writer holds in flight.
	total := 0
	deadline := time.Now().Add(5 * time.Second)
	for rd(s, uartLSR)&lsrTHRE != 0 {
		wr(s, uartRBR, byte('a'+total%26))
		total++
		if time.Now().After(deadline) {
			t.Fatal("transmitter never reported busy")
		}
	}
	expect(t, "LSR", rd(s, uartLSR)&(lsrTHRE|lsrTEMT), 0)
	wr(s, uartIER, ierETBEI)
	expectLine(t, line, false)
	close(g.gate)
	s.Flush()
	expectLine(t, line, true)
	if got := len(g.buf.String()); got != total {
		t.Fatalf("wrote %d bytes, want %d", got, total)
	}
	s.Close()
	s.Close()
	wr(s, uartRBR, 'z') // dropped after Close, no panic
	s.Flush()
}

func TestSerialStateRoundTrip(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, uartIIR, fcrEnable|0x40)
	wr(s, uartLCR, 0x03)
	wr(s, uartSCR, 0x77)
	wr(s, uartMCR, mcrOUT2|mcrDTR)
	wr(s, uartIER, ierERBFI|ierETBEI)
	s.Enqueue(bytes.Repeat([]byte("z"), 40))
	st := s.State()

	line := &fakeLine{}
	d := NewSerial(line, io.Discard)
	defer d.Close()
	if err := d.Restore(st); err != nil {
		t.Fatal(err)
	}
	expectLine(t, line, true)
	if got := d.State(); !equalSerialState(got, st) {
		t.Fatalf("restored state %+v, want %+v", got, st)
	}
	n := 0
	for rd(d, uartLSR)&lsrDR != 0 {
		rd(d, uartRBR)
		n++
	}
	if n != 40 {
		t.Fatalf("restored UART delivered %d bytes, want 40", n)
	}
}

func TestSerialRestoreRejects(t *testing.T) {
	s, _, _ := newTestSerial(t)
	if err := s.Restore(SerialState{RXFIFO: []byte{1, 2}}); err == nil {
		t.Fatal("two bytes without FIFOs accepted")
	}
	if err := s.Restore(SerialState{FCR: 1, RXFIFO: make([]byte, RXFIFOSize+1)}); err == nil {
		t.Fatal("oversized FIFO accepted")
	}
	if err := s.Restore(SerialState{HostInput: make([]byte, SerialInputBuffer+1)}); err == nil {
		t.Fatal("oversized input accepted")
	}
}

func equalSerialState(a, b SerialState) bool {
	return bytes.Equal(a.RXFIFO, b.RXFIFO) && bytes.Equal(a.HostInput, b.HostInput) &&
		a.IER == b.IER && a.LCR == b.LCR && a.MCR == b.MCR && a.SCR == b.SCR &&
		a.DLL == b.DLL && a.DLM == b.DLM && a.FCR == b.FCR && a.LSRErrors == b.LSRErrors &&
		a.MSRDelta == b.MSRDelta && a.THRInterrupt == b.THRInterrupt
}

func TestSerialConcurrent(t *testing.T) {
	s, _, out := newTestSerial(t)
	wr(s, uartMCR, mcrOUT2)
	wr(s, uartIER, ierERBFI|ierETBEI)
	var wg sync.WaitGroup
	wg.Add(2)
	const n = 2000
	go func() {
		defer wg.Done()
		for i := 0; i < n; {
			i += s.Enqueue([]byte{byte(i)})
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			wr(s, uartRBR, '.')
		}
	}()
	got := 0
	for got < n {
		rd(s, uartIIR)
		if rd(s, uartLSR)&lsrDR != 0 {
			if b := rd(s, uartRBR); b != byte(got) {
				t.Fatalf("byte %d = %d, want %d", got, b, byte(got))
			}
			got++
		}
	}
	wg.Wait()
	s.Flush()
	if len(out.String()) != n {
		t.Fatalf("wrote %d bytes, want %d", len(out.String()), n)
	}
}

func TestSerialNoAllocs(t *testing.T) {
	s := NewSerial(&fakeLine{}, io.Discard)
	defer s.Close()
	wr(s, uartMCR, mcrOUT2)
	wr(s, uartIER, ierERBFI|ierETBEI)
	in := []byte("k")
	data := make([]byte, 1)
	allocs := testing.AllocsPerRun(1000, func() {
		data[0] = 'x'
		s.Write(uartRBR, data)
		s.Read(uartIIR, data)
		s.Read(uartLSR, data)
		s.Enqueue(in)
		s.Read(uartRBR, data)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per access, want 0", allocs)
	}
}
