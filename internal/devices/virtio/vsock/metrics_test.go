package vsock

import (
	"io"
	"testing"
)

// TestMetrics: a connection's packets, payload bytes, its opening and its
// reset are counted.
func TestMetrics(t *testing.T) {
	g := newGuest(t)
	host, s := g.establish(52)
	io.WriteString(host, "hello guest")
	h, p := g.expect(opRW)
	s.absorb(h, p)
	s.send(opRW, []byte("hello host"))
	g.pump()
	readN(t, host, 10)
	sh := s.hdr(opShutdown)
	sh.flags = shutdownBoth
	g.send(sh, nil, false)
	g.expect(opRST)

	m := g.m.ctr.snapshot()
	if m.RxBytes != 11 || m.TxBytes != 10 {
		t.Errorf("payload bytes rx %d tx %d, want 11 and 10", m.RxBytes, m.TxBytes)
	}
	// To the guest: REQUEST, RW, RST at least; from it: RESPONSE, RW,
	// SHUTDOWN.
	if m.RxPackets < 3 || m.TxPackets != 3 {
		t.Errorf("packets rx %d tx %d, want at least 3 and 3", m.RxPackets, m.TxPackets)
	}
	if m.ConnsAdded != 1 || m.ConnsRemoved != 1 || m.Resets != 1 {
		t.Errorf("connections %+v, want one added, removed and reset", m)
	}
}
