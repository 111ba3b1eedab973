package vsock

import (
	"bytes"
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestShutdownFlushesFirst: the guest closes while data still waits for
// a slow host program; everything is delivered before the RST.
func TestShutdownFlushesFirst(t *testing.T) {
	g := newGuest(t)
	host, s := g.establish(52)
	c := g.m.conns[connKey{s.hport, s.gport}]
	unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	data := pattern(9, 200<<10)
	for off := 0; off < len(data); off += 50 << 10 {
		s.send(opRW, data[off:min(len(data), off+50<<10)])
		g.pump()
	}
	if c.buf.len() == 0 {
		t.Fatal("nothing buffered")
	}
	sh := s.hdr(opShutdown)
	sh.flags = shutdownBoth
	g.send(sh, nil, false)
	g.pump()
	if c.state == stateClosing {
		t.Fatal("closed before the data was written")
	}
	got := make([]byte, 0, len(data))
	buf := make([]byte, 8192)
	host.SetReadDeadline(time.Now().Add(readWait))
	for {
		n, err := host.Read(buf)
		got = append(got, buf[:n]...)
		g.pump()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("host got %d bytes, want %d intact", len(got), len(data))
	}
	g.expectSkipping(opRST)
}

// TestShutdownTimesOut: a host program that never reads cannot keep a
// closed connection's buffer forever.
func TestShutdownTimesOut(t *testing.T) {
	g := newGuest(t)
	now := time.Now()
	g.m.now = func() time.Time { return now }
	_, s := g.establish(52)
	c := g.m.conns[connKey{s.hport, s.gport}]
	unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	s.send(opRW, make([]byte, 60<<10))
	g.pump()
	sh := s.hdr(opShutdown)
	sh.flags = shutdownBoth
	g.send(sh, nil, false)
	g.pump()
	now = now.Add(closeTimeout + time.Second)
	g.expectSkipping(opRST)
	if len(g.m.conns) != 0 || g.m.pool.nfree == 0 {
		t.Errorf("conns %d, idle chunks %d", len(g.m.conns), g.m.pool.nfree)
	}
}

// TestGuestStopsReceiving: after SHUTDOWN(RCV) the device stops reading
// the host socket but still forwards guest data.
func TestGuestStopsReceiving(t *testing.T) {
	g := newGuest(t)
	host, s := g.establish(52)
	sh := s.hdr(opShutdown)
	sh.flags = shutdownRcv
	g.send(sh, nil, false)
	io.WriteString(host, "unwanted")
	g.expectNone()
	s.send(opRW, []byte("still"))
	g.pump()
	if got := readN(t, host, 5); string(got) != "still" {
		t.Fatalf("%q", got)
	}
	// Data after the guest promised to stop sending resets.
	sh.flags = shutdownSend
	g.send(sh, nil, false)
	g.pump()
	expectEOF(t, host)
	g.expect(opRST)
}

func TestHeaderRoundTrip(t *testing.T) {
	h := header{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	var b [hdrSize]byte
	h.encode(&b)
	var h2 header
	h2.decode(&b)
	if h != h2 {
		t.Fatalf("%+v != %+v", h, h2)
	}
	want := []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6, 0, 7, 0, 8, 0, 0, 0, 9, 0, 0, 0, 10, 0, 0, 0}
	if !bytes.Equal(b[:], want) {
		t.Fatalf("layout %v", b)
	}
	for op := uint16(0); op < 9; op++ {
		if opName(op) == "" {
			t.Error("empty op name")
		}
	}
	for s := stateHandshake; s <= stateClosing+1; s++ {
		if s.String() == "" {
			t.Error("empty state name")
		}
	}
}

func TestParseConnect(t *testing.T) {
	for _, c := range []struct {
		in   string
		port uint32
		ok   bool
	}{
		{"CONNECT 52", 52, true},
		{"connect 0", 0, true},
		{"Connect  4294967295 ", 4294967295, true},
		{"CONNECT 4294967296", 0, false},
		{"CONNECT", 0, false},
		{"CONNECT x", 0, false},
		{"CONNECT +5", 0, false},
		{"LISTEN 5", 0, false},
		{"", 0, false},
	} {
		p, ok := parseConnect([]byte(c.in))
		if p != c.port || ok != c.ok {
			t.Errorf("parseConnect(%q) = %d, %v", c.in, p, ok)
		}
	}
}
