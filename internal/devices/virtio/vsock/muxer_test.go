package vsock

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestHostInitiatedConnection(t *testing.T) {
	g := newGuest(t)
	host, s := g.establish(52)

	// Host to guest.
	io.WriteString(host, "hello guest")
	h, p := g.expect(opRW)
	if string(p) != "hello guest" || h.srcPort != s.hport || h.dstPort != 52 {
		t.Fatalf("RW %+v %q", h, p)
	}
	s.absorb(h, p)

	// Guest to host, both descriptor layouts.
	s.send(opRW, []byte("hello ")) // even port: header and payload apart
	h = s.hdr(opRW)
	h.len = 4
	g.send(h, []byte("host"), false) // one descriptor
	g.pump()
	if got := readN(t, host, 10); string(got) != "hello host" {
		t.Fatalf("host read %q", got)
	}
	if n := g.txUsed(); n != 2 {
		t.Errorf("%d TX chains returned, want 2", n)
	}

	// The guest closes: the host sees EOF, the guest gets its RST.
	sh := s.hdr(opShutdown)
	sh.flags = shutdownBoth
	g.send(sh, nil, false)
	h, _ = g.expect(opRST)
	if h.dstPort != 52 {
		t.Errorf("RST %+v", h)
	}
	expectEOF(t, host)
	if len(g.m.conns) != 0 || len(g.m.byToken) != 0 {
		t.Errorf("connection table not empty: %d/%d", len(g.m.conns), len(g.m.byToken))
	}
}

func TestHostConnectRefusedByGuest(t *testing.T) {
	g := newGuest(t)
	host := hostDial(t, g.cfg.UDSPath, 1234)
	g.postRX(4)
	h, _ := g.expect(opRequest)
	s := &gsock{g: g, gport: 1234, hport: h.srcPort}
	s.send(opRST, nil)
	g.pump()
	expectEOF(t, host)
	if len(g.m.conns) != 0 {
		t.Errorf("%d connections left", len(g.m.conns))
	}
}

func TestHostConnectTimesOut(t *testing.T) {
	g := newGuest(t)
	now := time.Now()
	g.m.now = func() time.Time { return now }
	host := hostDial(t, g.cfg.UDSPath, 7)
	g.postRX(4)
	g.expect(opRequest)
	now = now.Add(requestTimeout + time.Second)
	g.expect(opRST)
	expectEOF(t, host)
}

func TestConnectLine(t *testing.T) {
	g := newGuest(t)
	g.postRX(8)
	for _, bad := range []string{"HELLO 5\n", "CONNECT\n", "CONNECT -1\n", "CONNECT 4294967296\n", "CONNECT 5 6\n", strings.Repeat("x", 40)} {
		c := hostDial(t, g.cfg.UDSPath, 0)
		io.WriteString(c, bad)
		g.expectNone()
		expectEOF(t, c)
	}
	// The line in pieces, lower case, with data right behind it: the
	// data waits for the guest's answer.
	c := hostDial(t, g.cfg.UDSPath, 0)
	io.WriteString(c, "conn")
	g.expectNone()
	io.WriteString(c, "ect 99\nearly bytes")
	h, _ := g.expect(opRequest)
	if h.dstPort != 99 {
		t.Fatalf("request for port %d", h.dstPort)
	}
	g.expectNone() // no data before the guest accepts
	s := &gsock{g: g, gport: 99, hport: h.srcPort, bufAlloc: 1 << 20}
	s.send(opResponse, nil)
	g.pump()
	readN(t, c, len("OK \n")+len(itoa(h.srcPort)))
	_, p := g.expect(opRW)
	if string(p) != "early bytes" {
		t.Fatalf("data %q", p)
	}
	// A host program that leaves during the handshake is forgotten.
	c2 := hostDial(t, g.cfg.UDSPath, 0)
	c2.Close()
	g.expectNone()
	if g.m.handshakes != 0 {
		t.Errorf("%d handshakes left", g.m.handshakes)
	}
}

func TestGuestInitiatedConnection(t *testing.T) {
	g := newGuest(t)
	l := g.hostListen(5000)
	g.postRX(8)
	s := &gsock{g: g, gport: 40000, hport: 5000, bufAlloc: 64 << 10}
	s.send(opRequest, nil)
	h, _ := g.expect(opResponse)
	if h.srcPort != 5000 || h.dstPort != 40000 || h.bufAlloc != bufAlloc {
		t.Fatalf("response %+v", h)
	}
	s.absorb(h, nil)
	host, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	s.send(opRW, []byte("ping"))
	g.pump()
	if got := readN(t, host, 4); string(got) != "ping" {
		t.Fatalf("host read %q", got)
	}
	io.WriteString(host, "pong")
	h, p := g.expect(opRW)
	if string(p) != "pong" {
		t.Fatalf("guest read %q", p)
	}
	s.absorb(h, p)

	// The host half-closes: the guest learns the host will send no more,
	// and can still send.
	host.(*net.UnixConn).CloseWrite()
	h, _ = g.expect(opShutdown)
	if h.flags != shutdownSend {
		t.Fatalf("shutdown flags %d, want SEND only", h.flags)
	}
	s.send(opRW, []byte("after"))
	g.pump()
	if got := readN(t, host, 5); string(got) != "after" {
		t.Fatalf("host read %q", got)
	}
	// The guest finishes too: RST, and the host sees EOF.
	sh := s.hdr(opShutdown)
	sh.flags = shutdownSend
	g.send(sh, nil, false)
	g.expect(opRST)
	expectEOF(t, host)
}

func TestHostCloseBeforeGuest(t *testing.T) {
	g := newGuest(t)
	host, s := g.establish(60)
	io.WriteString(host, "last words")
	host.Close()
	h, p := g.expect(opRW)
	if string(p) != "last words" {
		t.Fatalf("%q", p)
	}
	s.absorb(h, p)
	h, _ = g.expect(opShutdown)
	if h.flags != shutdownBoth {
		t.Errorf("flags %d after a full close, want both", h.flags)
	}
	// Guest data now fails on the host side: RST.
	s.send(opRW, []byte("too late"))
	g.expect(opRST)
}

func TestGuestConnectNoListener(t *testing.T) {
	g := newGuest(t)
	g.postRX(4)
	s := &gsock{g: g, gport: 1, hport: 6000}
	s.send(opRequest, nil)
	h, _ := g.expect(opRST)
	if h.srcPort != 6000 || h.dstPort != 1 {
		t.Fatalf("RST %+v", h)
	}
	if g.m.stats.refusedConns != 1 {
		t.Errorf("refused %d", g.m.stats.refusedConns)
	}
}

func TestUnknownConnectionGetsRST(t *testing.T) {
	g := newGuest(t)
	g.postRX(8)
	s := &gsock{g: g, gport: 77, hport: 88}
	for _, op := range []uint16{opRW, opShutdown, opCreditUpdate, opCreditRequest, opResponse, 99} {
		s.send(op, nil)
		h, _ := g.expect(opRST)
		if h.srcPort != 88 || h.dstPort != 77 {
			t.Fatalf("RST %+v", h)
		}
	}
	s.send(opRST, nil) // never answer an RST with an RST
	g.expectNone()
}

func TestHostileHeaders(t *testing.T) {
	g := newGuest(t)
	host, s := g.establish(52)
	g.postRX(8)

	// Chains shorter than a header are dropped and returned.
	g.sendRaw([]byte{1, 2, 3})
	g.expectNone()
	if g.txUsed() != 1 || g.m.stats.badPackets != 1 {
		t.Fatalf("short chain: bad packets %d", g.m.stats.badPackets)
	}

	// A foreign source CID or a destination other than the host: dropped,
	// no RST, the connection lives.
	h := s.hdr(opRW)
	h.srcCID = 99
	h.len = 3
	g.send(h, []byte("bad"), false)
	h = s.hdr(opRW)
	h.dstCID = 7
	h.len = 3
	g.send(h, []byte("bad"), false)
	g.expectNone()

	// A non-stream type: RST for that address, connection untouched.
	h = s.hdr(opRW)
	h.typ = 2
	g.send(h, nil, false)
	g.expect(opRST)
	if len(g.m.conns) != 1 {
		t.Fatal("connection dropped by a foreign-type packet")
	}

	// A length larger than the chain: the connection is reset.
	h = s.hdr(opRW)
	h.len = 100
	g.send(h, []byte("short"), false)
	g.expect(opRST)
	expectEOF(t, host)

	// Larger than the maximum packet, on another connection.
	host2, s2 := g.establish(53)
	h = s2.hdr(opRW)
	h.len = maxPayload + 1
	g.send(h, make([]byte, maxPayload+1), false)
	g.expect(opRST)
	expectEOF(t, host2)
	if g.m.stats.badPackets < 5 {
		t.Errorf("bad packets %d", g.m.stats.badPackets)
	}
}

func TestCreditAbuse(t *testing.T) {
	g := newGuest(t)
	host, s := g.establish(52)
	// The host program does not read: the socket buffer fills, then ours.
	chunk := make([]byte, maxPayload)
	for i := 0; i < 200 && len(g.m.conns) == 1 && g.m.conns[connKey{s.hport, s.gport}].state == stateEstablished; i++ {
		s.send(opRW, chunk)
		g.pump()
		if c := g.m.conns[connKey{s.hport, s.gport}]; c != nil && c.buffered() > bufAlloc {
			t.Fatalf("%d bytes buffered, above the %d credit", c.buffered(), bufAlloc)
		}
	}
	if g.m.stats.creditAbuse != 1 {
		t.Fatalf("credit abuse not detected (%d)", g.m.stats.creditAbuse)
	}
	h, _ := g.expectSkipping(opRST)
	if h.dstPort != 52 {
		t.Fatalf("RST %+v", h)
	}
	if g.m.pool.nfree > maxIdleChunks {
		t.Errorf("%d idle chunks", g.m.pool.nfree)
	}
	host.Close()
}

// TestCreditToGuest: the device never sends more than the guest's
// buf_alloc, asks for credit once, and resumes on a credit update.
func TestCreditToGuest(t *testing.T) {
	g := newGuest(t)
	host, s := g.establish(52)
	s.bufAlloc = 1000
	s.send(opCreditUpdate, nil)
	g.pump()
	data := pattern(1, 5000)
	host.Write(data)
	var got []byte
	h, p := g.expect(opRW)
	got = append(got, p...)
	if len(p) != 1000 {
		t.Fatalf("first packet %d bytes, want the 1000 of credit", len(p))
	}
	s.absorb(h, p)
	g.expect(opCreditRequest)
	g.expectNone() // no more requests while waiting
	for len(got) < len(data) {
		// The guest's application consumed everything: tell the device.
		s.send(opCreditUpdate, nil)
		h, p := g.expect(opRW)
		if len(p) > 1000 {
			t.Fatalf("packet of %d bytes beyond the credit", len(p))
		}
		s.absorb(h, p)
		got = append(got, p...)
		g.pump()
		for {
			h, _, ok := g.recv()
			if !ok {
				break
			}
			if h.op != opCreditRequest {
				t.Fatalf("unexpected %s", opName(h.op))
			}
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data corrupted")
	}
}

// TestCreditFromGuest: a CREDIT_REQUEST is answered, and a guest sending
// a lot gets updates before it runs out of credit.
func TestCreditFromGuest(t *testing.T) {
	g := newGuest(t)
	host, s := g.establish(52)
	s.send(opCreditRequest, nil)
	h, _ := g.expect(opCreditUpdate)
	if h.bufAlloc != bufAlloc || h.fwdCnt != 0 {
		t.Fatalf("credit update %+v", h)
	}
	data := pattern(2, 192<<10)
	done := make(chan []byte)
	go func() { done <- readN(t, host, len(data)) }()
	updates := 0
	for off := 0; off < len(data); off += 32 << 10 {
		s.send(opRW, data[off:off+32<<10])
		g.pump()
		for {
			h, _, ok := g.recv()
			if !ok {
				break
			}
			if h.op != opCreditUpdate {
				t.Fatalf("unexpected %s", opName(h.op))
			}
			updates++
			s.absorb(h, nil)
		}
		if s.sent-s.peerFwdCnt > s.peerAlloc {
			t.Fatalf("guest ran out of credit: sent %d, fwd %d", s.sent, s.peerFwdCnt)
		}
	}
	if got := <-done; !bytes.Equal(got, data) {
		t.Fatal("data corrupted")
	}
	if updates == 0 {
		t.Error("no credit update")
	}
}

func TestNoReceiveBuffers(t *testing.T) {
	g := newGuest(t)
	host, s := g.establish(52)
	for g.rxOut > 0 { // use up the posted buffers
		s.send(opCreditRequest, nil)
		g.pump()
		g.recv()
	}
	io.WriteString(host, "waiting")
	g.pump()
	if _, _, ok := g.recv(); ok {
		t.Fatal("packet without a buffer")
	}
	g.postRX(1)
	h, p := g.expect(opRW)
	if string(p) != "waiting" || h.dstPort != 52 {
		t.Fatalf("%+v %q", h, p)
	}
}

func TestTinyReceiveBufferIsReturned(t *testing.T) {
	g := newGuest(t)
	g.postRX(0)
	g.drv[rxQueue].AddChain(g.rxBuf(hdrSize))
	g.notify[rxQueue].Signal()
	s := &gsock{g: g, gport: 1, hport: 2}
	s.send(opRW, nil) // owes an RST
	g.pump()
	id, n, ok := g.drv[rxQueue].NextUsed()
	if !ok || n != 0 {
		t.Fatalf("tiny buffer: used %d/%d/%v", id, n, ok)
	}
}

func TestTransportReset(t *testing.T) {
	g := newGuest(t)
	host, _ := g.establish(52)
	ev := g.drv[eventQueue]
	ev.AddChain(g.evBuf())
	g.notify[eventQueue].Signal()
	g.pump()
	g.m.mu.Lock()
	g.m.transportReset()
	g.m.mu.Unlock()
	g.pump()
	id, n, ok := ev.NextUsed()
	if !ok || n != 4 {
		t.Fatalf("event: %d/%d/%v", id, n, ok)
	}
	if got, _ := g.mem.Uint32(evBase + uint64(id)*16); got != eventTransportReset {
		t.Errorf("event id %d", got)
	}
	expectEOF(t, host)
	g.expectNone() // no RSTs: the guest resets its sockets itself
	if len(g.m.conns) != 0 {
		t.Error("connections survived")
	}
}

func TestManyConnectionsKeepOrder(t *testing.T) {
	g := newGuest(t)
	const n = 50
	hosts := make([]net.Conn, n)
	socks := make([]*gsock, n)
	for i := range n {
		hosts[i], socks[i] = g.establish(uint32(100 + i))
	}
	// Each host writes a distinct stream; packets interleave; each
	// guest-side stream must come out whole and in order.
	want := make([][]byte, n)
	got := make([][]byte, n)
	for i := range n {
		want[i] = pattern(uint32(i), 20000)
		go hosts[i].Write(want[i])
	}
	byPort := map[uint32]int{}
	for i, s := range socks {
		byPort[s.gport] = i
	}
	deadline := time.Now().Add(20 * time.Second)
	total := 0
	for total < n*20000 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d bytes arrived", total)
		}
		if g.rxOut < 16 {
			g.postRX(64)
		}
		g.pump()
		for {
			h, p, ok := g.recv()
			if !ok {
				break
			}
			i := byPort[h.dstPort]
			switch h.op {
			case opRW:
				got[i] = append(got[i], p...)
				total += len(p)
				socks[i].absorb(h, p)
				socks[i].send(opCreditUpdate, nil)
			case opCreditRequest:
				socks[i].send(opCreditUpdate, nil)
			default:
				t.Fatalf("unexpected %s", opName(h.op))
			}
		}
		time.Sleep(time.Millisecond)
	}
	for i := range n {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("connection %d: stream corrupted (%d bytes)", i, len(got[i]))
		}
	}
}

func (g *guest) rxBuf(n uint32) virtioBuf {
	addr := rxBase + uint64(g.rxNext)*rxBufSize
	g.rxNext = (g.rxNext + 1) % testQSize
	return virtioBuf{Addr: addr, Len: n, Write: true}
}

func (g *guest) evBuf() virtioBuf {
	addr := evBase + uint64(g.evNext)*16
	g.evNext = (g.evNext + 1) % testQSize
	return virtioBuf{Addr: addr, Len: 4, Write: true}
}
