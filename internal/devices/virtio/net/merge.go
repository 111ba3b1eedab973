package net

import (
	"encoding/binary"
)

// Receive coalescing: when TCP segments of one IPv4 flow wait in the TAP
// back to back, the device hands them to a driver that accepts TSO as one
// large GSO packet (what a NIC's large receive offload does), so the
// guest's stack processes one packet instead of dozens. Only segments the
// host left for the receiver to checksum (NEEDS_CSUM) and that Linux's own
// GRO would merge are merged: same addresses, ports, TOS, TTL,
// acknowledgement, window and TCP options; consecutive sequence numbers;
// no flag but ACK and PSH; equal segment sizes but for the last. As in
// large receive offload, PSH does not stop a merge: the merged packet
// carries it if any of its segments did (the data is delivered at once
// either way, it all arrived together).

// Offsets in a frame (Ethernet, IPv4 without options, TCP).
const (
	ipOff      = ethHeaderLen
	ipHdrLen   = 20
	tcpOff     = ipOff + ipHdrLen
	tcpMinLen  = 20
	ipProtoTCP = 6
	tcpFlagACK = 0x10
	tcpFlagPSH = 0x08
	// maxIPLen bounds a merged packet's IP total length.
	maxIPLen = 65535
)

// segment describes a frame that may take part in coalescing.
type segment struct {
	tcpLen  int    // TCP header length
	payload int    // TCP payload bytes
	seq     uint32 // sequence number of the first payload byte
	mss     int    // segment size: gso_size, or the payload of a plain packet
	gso     bool   // the packet is already a GSO packet
	flags   byte   // TCP flags
}

// parseSegment checks that pkt (header and frame) is a TCP/IPv4 data
// segment coalescing can handle and describes it.
func parseSegment(pkt []byte) (segment, bool) {
	var s segment
	if len(pkt) < hdrLen+tcpOff+tcpMinLen {
		return s, false
	}
	h := decodeHeader(pkt)
	f := pkt[hdrLen:]
	if h.flags != hdrNeedsCSUM || h.csumStart != tcpOff || h.csumOffset != 16 ||
		(h.gsoType != gsoNone && h.gsoType != gsoTCPv4) {
		return s, false
	}
	ip := f[ipOff:]
	if binary.BigEndian.Uint16(f[12:]) != 0x0800 || ip[0] != 0x45 || ip[9] != ipProtoTCP ||
		binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 { // MF or a fragment offset
		return s, false
	}
	if int(binary.BigEndian.Uint16(ip[2:])) != len(f)-ipOff {
		return s, false // padding or a truncated frame
	}
	s.tcpLen = int(f[tcpOff+12]>>4) * 4
	if s.tcpLen < tcpMinLen || tcpOff+s.tcpLen > len(f) {
		return s, false
	}
	s.payload = len(f) - tcpOff - s.tcpLen
	s.flags = f[tcpOff+13]
	s.seq = binary.BigEndian.Uint32(f[tcpOff+4:])
	if s.payload == 0 || s.flags&^tcpFlagPSH != tcpFlagACK {
		return s, false
	}
	s.mss = s.payload
	if h.gsoType == gsoTCPv4 {
		if h.gsoSize == 0 {
			return s, false
		}
		s.mss, s.gso = int(h.gsoSize), true
	}
	return s, true
}

// canMerge reports whether segment b (frame fb) continues packet a (frame
// fa) so that appending b's payload yields a valid GSO packet.
func canMerge(a segment, fa []byte, b segment, fb []byte) bool {
	switch {
	case a.payload%a.mss != 0: // a short segment ends the packet
		return false
	case b.gso && b.mss != a.mss, !b.gso && b.payload > a.mss:
		return false
	case a.tcpLen != b.tcpLen || b.seq != a.seq+uint32(a.payload):
		return false
	case tcpOff+a.tcpLen+a.payload+b.payload-ipOff > maxIPLen:
		return false
	}
	// Ethernet addresses and type; IP TOS; TTL, protocol; addresses.
	if string(fa[:ipOff]) != string(fb[:ipOff]) || fa[ipOff+1] != fb[ipOff+1] ||
		string(fa[ipOff+8:ipOff+10]) != string(fb[ipOff+8:ipOff+10]) ||
		string(fa[ipOff+12:ipOff+20]) != string(fb[ipOff+12:ipOff+20]) {
		return false
	}
	// Ports; then acknowledgement, data offset, window; then options.
	ta, tb := fa[tcpOff:], fb[tcpOff:]
	return string(ta[0:4]) == string(tb[0:4]) && string(ta[8:12]) == string(tb[8:12]) &&
		ta[12] == tb[12] && string(ta[14:16]) == string(tb[14:16]) &&
		string(ta[tcpMinLen:a.tcpLen]) == string(tb[tcpMinLen:b.tcpLen])
}

// merge appends b's payload to the packet in buf[:n] (whose segment is
// a) and fixes its headers; it returns the new length and segment. buf
// must have room.
func merge(buf []byte, n int, a segment, pb []byte, b segment) (int, segment) {
	fb := pb[hdrLen:]
	n += copy(buf[n:], fb[tcpOff+b.tcpLen:])
	f := buf[hdrLen:n]
	a.payload += b.payload
	f[tcpOff+13] |= b.flags & tcpFlagPSH
	a.flags |= b.flags & tcpFlagPSH
	ip := f[ipOff:]
	binary.BigEndian.PutUint16(ip[2:], uint16(len(f)-ipOff))
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^foldSum(sum16(ip[:ipHdrLen], 0)))
	// The partial checksum: the pseudo header with the new TCP length.
	tcpLen := len(f) - tcpOff
	ps := sum16(ip[12:20], uint32(ipProtoTCP)+uint32(tcpLen))
	binary.BigEndian.PutUint16(f[tcpOff+16:], foldSum(ps))
	h := decodeHeader(buf)
	h.gsoType, h.gsoSize = gsoTCPv4, uint16(a.mss)
	h.hdrLen = uint16(tcpOff + a.tcpLen)
	h.encode(buf)
	return n, a
}

// sum16 adds b as big-endian 16-bit words to s.
func sum16(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

// foldSum folds a one's complement sum to 16 bits.
func foldSum(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
