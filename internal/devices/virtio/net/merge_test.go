package net

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// tcpSeg describes a TCP/IPv4 segment for tests.
type tcpSeg struct {
	seq     uint32
	payload []byte
	flags   byte
	opts    []byte // TCP options, a multiple of 4 bytes
	gsoSize uint16 // non-zero: a GSO packet
	ack     uint32
	window  uint16
	sport   uint16
	ipID    uint16
}

// build makes the packet (virtio-net header and frame) the host kernel
// hands a TAP for a segment it leaves the receiver to checksum: the TCP
// checksum field holds the pseudo-header sum.
func (s tcpSeg) build() []byte {
	if s.flags == 0 {
		s.flags = tcpFlagACK
	}
	if s.window == 0 {
		s.window = 502
	}
	if s.sport == 0 {
		s.sport = 40000
	}
	if s.ack == 0 {
		s.ack = 7777
	}
	thl := tcpMinLen + len(s.opts)
	f := make([]byte, tcpOff+thl+len(s.payload))
	copy(f, []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00})
	ip := f[ipOff:]
	ip[0], ip[1], ip[8], ip[9] = 0x45, 0, 64, ipProtoTCP
	binary.BigEndian.PutUint16(ip[2:], uint16(len(f)-ipOff))
	binary.BigEndian.PutUint16(ip[4:], s.ipID)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	copy(ip[12:], []byte{10, 77, 0, 1, 10, 77, 0, 2})
	binary.BigEndian.PutUint16(ip[10:], ^foldSum(sum16(ip[:ipHdrLen], 0)))
	th := f[tcpOff:]
	binary.BigEndian.PutUint16(th[0:], s.sport)
	binary.BigEndian.PutUint16(th[2:], 5004)
	binary.BigEndian.PutUint32(th[4:], s.seq)
	binary.BigEndian.PutUint32(th[8:], s.ack)
	th[12], th[13] = byte(thl/4)<<4, s.flags
	binary.BigEndian.PutUint16(th[14:], s.window)
	copy(th[tcpMinLen:], s.opts)
	copy(th[thl:], s.payload)
	binary.BigEndian.PutUint16(th[16:], foldSum(sum16(ip[12:20], ipProtoTCP+uint32(len(th)))))
	h := header{flags: hdrNeedsCSUM, csumStart: tcpOff, csumOffset: 16}
	if s.gsoSize != 0 {
		h.gsoType, h.gsoSize, h.hdrLen = gsoTCPv4, s.gsoSize, uint16(tcpOff+thl)
	}
	return concat(hdrBytes(h), f)
}

// payloadOf is a run of recognisable bytes.
func payloadOf(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*13)
	}
	return b
}

// mergeAll runs the coalescing steps the receive path runs over pkts and
// returns the resulting packets.
func mergeAll(pkts [][]byte) [][]byte {
	var out [][]byte
	buf := make([]byte, maxPacketLen)
	n := 0
	var a segment
	open := false
	for _, p := range pkts {
		if open {
			if b, ok := parseSegment(p); ok && canMerge(a, buf[hdrLen:n], b, p[hdrLen:]) {
				n, a = merge(buf, n, a, p, b)
				continue
			}
			out = append(out, append([]byte(nil), buf[:n]...))
		}
		n = copy(buf, p)
		a, open = parseSegment(p)
		if !open {
			out = append(out, append([]byte(nil), p...))
		}
	}
	if open {
		out = append(out, append([]byte(nil), buf[:n]...))
	}
	return out
}

// checkMerged verifies a merged packet: IP length and checksum, the
// partial TCP checksum, the GSO fields and the payload.
func checkMerged(t *testing.T, pkt []byte, mss int, payload []byte, flags byte) {
	t.Helper()
	h := decodeHeader(pkt)
	f := pkt[hdrLen:]
	ip := f[ipOff:]
	thl := int(f[tcpOff+12]>>4) * 4
	if h.gsoType != gsoTCPv4 || int(h.gsoSize) != mss || int(h.hdrLen) != tcpOff+thl || h.flags != hdrNeedsCSUM {
		t.Errorf("header %+v, want TCPv4 GSO of %d with hdr_len %d", h, mss, tcpOff+thl)
	}
	if int(binary.BigEndian.Uint16(ip[2:])) != len(f)-ipOff || foldSum(sum16(ip[:ipHdrLen], 0)) != 0xffff {
		t.Errorf("IP total length %d for a %d-byte frame, or a bad IP checksum", binary.BigEndian.Uint16(ip[2:]), len(f))
	}
	if got, want := binary.BigEndian.Uint16(f[tcpOff+16:]), foldSum(sum16(ip[12:20], ipProtoTCP+uint32(len(f)-tcpOff))); got != want {
		t.Errorf("partial TCP checksum %#x, want the pseudo-header sum %#x", got, want)
	}
	if f[tcpOff+13] != flags {
		t.Errorf("TCP flags %#x, want %#x", f[tcpOff+13], flags)
	}
	if !bytes.Equal(f[tcpOff+thl:], payload) {
		t.Errorf("payload differs (%d bytes, want %d)", len(f)-tcpOff-thl, len(payload))
	}
	if err := h.fixRx(len(f), FeatureGuestCSUM|FeatureGuestTSO4); err != nil {
		t.Errorf("the merged packet fails the receive checks: %v", err)
	}
}

func TestMergeSegments(t *testing.T) {
	ts := []byte{1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7} // NOP NOP timestamps
	var pkts [][]byte
	var all []byte
	seq := uint32(1000)
	for i, n := range []int{1448, 1448, 1448, 700} {
		p := payloadOf(n, byte(i))
		flags := byte(tcpFlagACK)
		if i == 3 {
			flags |= tcpFlagPSH
		}
		pkts = append(pkts, tcpSeg{seq: seq, payload: p, opts: ts, flags: flags, ipID: uint16(i)}.build())
		all = append(all, p...)
		seq += uint32(n)
	}
	out := mergeAll(pkts)
	if len(out) != 1 {
		t.Fatalf("%d packets, want 1", len(out))
	}
	checkMerged(t, out[0], 1448, all, tcpFlagACK|tcpFlagPSH)

	// GSO packets from the host merge with each other and with a plain tail.
	a := payloadOf(2*1000, 1)
	b := payloadOf(3*1000, 2)
	c := payloadOf(1000, 3)
	out = mergeAll([][]byte{
		tcpSeg{seq: 1, payload: a, gsoSize: 1000}.build(),
		tcpSeg{seq: 2001, payload: b, gsoSize: 1000}.build(),
		tcpSeg{seq: 5001, payload: c}.build(),
	})
	if len(out) != 1 {
		t.Fatalf("GSO run: %d packets, want 1", len(out))
	}
	checkMerged(t, out[0], 1000, concat(a, b, c), tcpFlagACK)

	// Every segment pushed, as Linux often sends them: still one packet.
	out = mergeAll([][]byte{
		tcpSeg{seq: 1, payload: a, gsoSize: 1000, flags: tcpFlagACK | tcpFlagPSH}.build(),
		tcpSeg{seq: 2001, payload: b, gsoSize: 1000, flags: tcpFlagACK | tcpFlagPSH}.build(),
	})
	if len(out) != 1 {
		t.Fatalf("pushed segments: %d packets, want 1", len(out))
	}
	checkMerged(t, out[0], 1000, concat(a, b), tcpFlagACK|tcpFlagPSH)
}

func TestMergeRefusals(t *testing.T) {
	p := payloadOf(1000, 1)
	base := tcpSeg{seq: 1, payload: p}
	next := func(mod func(*tcpSeg)) []byte {
		s := tcpSeg{seq: 1001, payload: payloadOf(1000, 2)}
		if mod != nil {
			mod(&s)
		}
		return s.build()
	}
	for _, c := range []struct {
		name  string
		first []byte
		then  []byte
	}{
		{"sequence gap", base.build(), next(func(s *tcpSeg) { s.seq = 1002 })},
		{"other port", base.build(), next(func(s *tcpSeg) { s.sport = 1 })},
		{"other ack", base.build(), next(func(s *tcpSeg) { s.ack = 1 })},
		{"other window", base.build(), next(func(s *tcpSeg) { s.window = 1 })},
		{"other options", tcpSeg{seq: 1, payload: p, opts: []byte{1, 1, 1, 1}}.build(), next(func(s *tcpSeg) { s.opts = []byte{1, 1, 1, 0} })},
		{"FIN", base.build(), next(func(s *tcpSeg) { s.flags = tcpFlagACK | 1 })},
		{"pure ACK", base.build(), next(func(s *tcpSeg) { s.payload = nil })},
		{"bigger segment", base.build(), next(func(s *tcpSeg) { s.payload = payloadOf(1001, 0) })},
		{"after a short one", tcpSeg{seq: 1, payload: payloadOf(999, 0)}.build(), next(func(s *tcpSeg) { s.seq = 1000 })},
		{"GSO of another size", tcpSeg{seq: 1, payload: payloadOf(2000, 0), gsoSize: 1000}.build(), next(func(s *tcpSeg) { s.seq, s.gsoSize = 2001, 500 })},
		{"too long", tcpSeg{seq: 1, payload: payloadOf(65000, 0), gsoSize: 1000}.build(), next(func(s *tcpSeg) { s.seq = 65001 })},
	} {
		if out := mergeAll([][]byte{c.first, c.then}); len(out) != 2 || !bytes.Equal(out[0], c.first) || !bytes.Equal(out[1], c.then) {
			t.Errorf("%s: merged", c.name)
		}
	}
	// Packets coalescing does not take at all.
	good := base.build()
	for _, c := range []struct {
		name string
		mod  func([]byte)
	}{
		{"checksum done", func(b []byte) { b[0] = hdrDataValid }},
		{"other checksum offset", func(b []byte) { b[8] = 6 }},
		{"UDP", func(b []byte) { b[hdrLen+ipOff+9] = 17 }},
		{"IP options", func(b []byte) { b[hdrLen+ipOff] = 0x46 }},
		{"fragment", func(b []byte) { b[hdrLen+ipOff+6] |= 0x20 }},
		{"padded frame", func(b []byte) { binary.BigEndian.PutUint16(b[hdrLen+ipOff+2:], 100) }},
		{"VLAN", func(b []byte) { b[hdrLen+12], b[hdrLen+13] = 0x81, 0 }},
		{"short TCP header", func(b []byte) { b[hdrLen+tcpOff+12] = 4 << 4 }},
		{"ECN GSO", func(b []byte) { b[1] = gsoTCPv4 | gsoECN }},
		{"GSO without size", func(b []byte) { b[1] = gsoTCPv4 }},
	} {
		b := append([]byte(nil), good...)
		c.mod(b)
		if _, ok := parseSegment(b); ok {
			t.Errorf("%s: accepted", c.name)
		}
	}
	if _, ok := parseSegment(good[:hdrLen+tcpOff+10]); ok {
		t.Error("truncated packet accepted")
	}
}

// TestDeviceCoalescesReceives: segments waiting in the TAP reach a driver
// that accepts TSO as one packet, and as they are for one that does not.
func TestDeviceCoalescesReceives(t *testing.T) {
	for _, tso := range []bool{true, false} {
		features := uint64(linuxFeatures)
		if !tso {
			features &^= FeatureGuestTSO4 | FeatureGuestTSO6
		}
		// The segments are all waiting before the device starts: a
		// running device reads (and merges) whatever the TAP holds at
		// that moment, so injecting into a live one would race.
		r := buildRig(t, Config{}, features)
		var all []byte
		seq := uint32(5)
		for i := range 6 {
			p := payloadOf(1448, byte(i))
			r.tap.inject(t, 0, tcpSeg{seq: seq, payload: p}.build())
			all = append(all, p...)
			seq += 1448
		}
		if err := r.dev.Activate(r.ctx()); err != nil {
			t.Fatal(err)
		}
		d := r.rx(0)
		bufs := map[uint32]virtiotest.Buf{}
		for range 12 {
			b := rxBuf(d, 4096)
			bufs[uint32(d.AddChain(b))] = b
		}
		r.kick(0)
		var got []byte
		packets := 0
		for len(got) < len(all)+6*(hdrLen+tcpOff+tcpMinLen) && packets < 6 {
			id, n := waitUsed(t, d)
			chunk := virtiotest.Bytes(t, r.mem, bufs[id].Addr, int(n))
			h := decodeHeader(chunk)
			for k := 1; k < int(h.numBuffers); k++ {
				id, n := waitUsed(t, d)
				chunk = append(chunk, virtiotest.Bytes(t, r.mem, bufs[id].Addr, int(n))...)
			}
			packets++
			got = append(got, chunk[hdrLen+tcpOff+tcpMinLen:]...)
			if tso {
				checkMerged(t, chunk, 1448, all, tcpFlagACK)
				break
			}
		}
		st := r.dev.Stats()[0]
		if tso && (packets != 1 || st.RxMerged != 5 || st.RxPackets != 1) {
			t.Errorf("with TSO: %d packets, stats %+v; want one packet made of six", packets, st)
		}
		if !tso && (packets != 6 || st.RxMerged != 0 || !bytes.Equal(got, all)) {
			t.Errorf("without TSO: %d packets, stats %+v; want the six as they are", packets, st)
		}
	}
}

// FuzzMerge merges arbitrary packet pairs: a merge happens only between
// well-formed segments and always yields a packet that passes the
// receive checks with consistent lengths and checksums.
func FuzzMerge(f *testing.F) {
	f.Add(tcpSeg{seq: 1, payload: payloadOf(100, 1)}.build(), tcpSeg{seq: 101, payload: payloadOf(100, 2)}.build())
	f.Add(tcpSeg{seq: 1, payload: payloadOf(2000, 1), gsoSize: 1000}.build(), tcpSeg{seq: 2001, payload: payloadOf(10, 2)}.build())
	f.Add([]byte{1, 2, 3}, tcpSeg{seq: 1}.build())
	buf := make([]byte, maxPacketLen)
	f.Fuzz(func(t *testing.T, p1, p2 []byte) {
		if len(p1) > maxPacketLen || len(p2) > maxPacketLen {
			return
		}
		a, ok := parseSegment(p1)
		if !ok {
			return
		}
		b, ok := parseSegment(p2)
		if !ok || !canMerge(a, p1[hdrLen:], b, p2[hdrLen:]) {
			return
		}
		n := copy(buf, p1)
		n, m := merge(buf, n, a, p2, b)
		if n != len(p1)+b.payload || m.payload != a.payload+b.payload || n-hdrLen > maxFrameLen {
			t.Fatalf("merged length %d from %d and %d", n, len(p1), len(p2))
		}
		h := decodeHeader(buf)
		f := buf[hdrLen:n]
		if err := h.fixRx(len(f), FeatureGuestCSUM|FeatureGuestTSO4); err != nil {
			t.Fatalf("merged packet fails the receive checks: %v", err)
		}
		if int(binary.BigEndian.Uint16(f[ipOff+2:])) != len(f)-ipOff || foldSum(sum16(f[ipOff:ipOff+ipHdrLen], 0)) != 0xffff {
			t.Fatal("bad IP length or checksum")
		}
		if !bytes.Equal(f[len(f)-b.payload:], p2[len(p2)-b.payload:]) {
			t.Fatal("payload not appended")
		}
	})
}
