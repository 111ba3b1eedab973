package legacy

import (
	"io"
	"testing"
)

// FuzzSerial drives a UART with a stream of two-byte operations
// (kind|offset, value) and checks its invariants after each one.
func FuzzSerial(f *testing.F) {
	f.Add([]byte{0x0c, 0x08, 0x09, 0x02, 0x02, 0x00, 0x08, 'A'})
	f.Add([]byte{0x0a, 0xc1, 0x09, 0x01, 0x10, 0x20, 0x02, 0x00, 0x00, 0x00})
	f.Add([]byte{0x0c, 0x1a, 0x08, 'x', 0x08, 'y', 0x05, 0x00, 0x18, 0x00})
	f.Fuzz(func(t *testing.T, ops []byte) {
		line := &fakeLine{}
		s := NewSerial(line, io.Discard)
		defer s.Close()
		var data [1]byte
		for i := 0; i+1 < len(ops); i += 2 {
			op, v := ops[i], ops[i+1]
			off := uint64(op & 7)
			switch (op >> 3) & 3 {
			case 0:
				s.mu.Lock()
				_, wantPending := s.pending()
				dlab := s.dlab()
				s.mu.Unlock()
				s.Read(off, data[:])
				if off == uartIIR && (data[0]&iirNone == 0) != wantPending {
					t.Fatalf("op %d: IIR %#x disagrees with pending=%v", i/2, data[0], wantPending)
				}
				if off == uartIER && !dlab && data[0]&^ierMask != 0 {
					t.Fatalf("op %d: IER reads reserved bits %#x", i/2, data[0])
				}
			case 1:
				data[0] = v
				s.Write(off, data[:])
			case 2:
				var in [32]byte
				for j := range in {
					in[j] = v + byte(j)
				}
				if n := s.Enqueue(in[:v%32]); n > int(v%32) {
					t.Fatalf("op %d: Enqueue accepted %d of %d bytes", i/2, n, v%32)
				}
			default:
				if err := s.Restore(s.State()); err != nil {
					t.Fatalf("op %d: restoring own state: %v", i/2, err)
				}
			}
			checkSerialInvariants(t, i/2, s, line)
		}
	})
}

func checkSerialInvariants(t *testing.T, op int, s *Serial, line *fakeLine) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rx.len() > s.rxCapacity() {
		t.Fatalf("op %d: FIFO holds %d bytes, capacity %d", op, s.rx.len(), s.rxCapacity())
	}
	if !s.loopback() && s.rx.len() < s.rxCapacity() && s.host.len() > 0 {
		t.Fatalf("op %d: host input waits while the FIFO has room", op)
	}
	if s.thrPending && s.ier&ierETBEI == 0 {
		t.Fatalf("op %d: THR interrupt pending while disabled", op)
	}
	if (s.lsr()&lsrDR != 0) != (s.rx.len() > 0) {
		t.Fatalf("op %d: LSR.DR disagrees with the FIFO", op)
	}
	want := s.level()
	if s.lineHigh != want || line.level() != want {
		t.Fatalf("op %d: line %v (tracked %v), want %v", op, line.level(), s.lineHigh, want)
	}
}
