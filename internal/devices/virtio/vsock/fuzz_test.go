package vsock

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// fuzzHostPort is the guest-initiated connection's host port in the
// fuzz setup (a host socket listens there).
const fuzzHostPort = 5000

// fuzzHeader encodes a packet header for seeds.
func fuzzHeader(srcPort, dstPort uint32, op uint16, flags, length uint32) []byte {
	h := header{srcCID: testCID, dstCID: HostCID, srcPort: srcPort, dstPort: dstPort, typ: typeStream, op: op, flags: flags, len: length, bufAlloc: 1 << 16}
	var b [hdrSize]byte
	h.encode(&b)
	return b[:]
}

// fuzzRecord frames one TX chain for the fuzz input: a layout byte, a
// 16-bit length, the bytes.
func fuzzRecord(layout byte, raw []byte) []byte {
	b := []byte{layout, 0, 0}
	binary.LittleEndian.PutUint16(b[1:], uint16(len(raw)))
	return append(b, raw...)
}

// FuzzVsockPacket feeds arbitrary TX chains to a muxer that has two open
// connections (one host-initiated to guest port 52, one guest-initiated
// from guest port 40000 to host port 5000) and a host listener: whatever
// the guest sends, the VMM must not panic, must return every chain, must
// keep each connection's buffer within its credit and the table within
// its limit.
func FuzzVsockPacket(f *testing.F) {
	local := uint32(1 << 30) // the first host-initiated connection's port
	data := bytes.Repeat([]byte("d"), 100)
	f.Add(fuzzRecord(0, append(fuzzHeader(52, local, opRW, 0, 100), data...)))
	f.Add(fuzzRecord(1, append(fuzzHeader(40000, fuzzHostPort, opRW, 0, 100), data...)))
	f.Add(fuzzRecord(0, fuzzHeader(52, local, opShutdown, shutdownBoth, 0)))
	f.Add(fuzzRecord(0, fuzzHeader(52, local, opCreditRequest, 0, 0)))
	f.Add(fuzzRecord(0, fuzzHeader(41000, fuzzHostPort, opRequest, 0, 0)))
	f.Add(fuzzRecord(0, fuzzHeader(41000, 9, opRequest, 0, 0)))
	f.Add(fuzzRecord(0, fuzzHeader(52, local, opRW, 0, 1<<20)))
	f.Add(fuzzRecord(0, fuzzHeader(52, local, opRST, 0, 0)))
	f.Add(append(fuzzRecord(2, append(fuzzHeader(52, local, opRW, 0, 100), data...)),
		fuzzRecord(0, fuzzHeader(40000, fuzzHostPort, opShutdown, shutdownSend, 0))...))
	f.Add([]byte{0, 3, 0, 1, 2, 3})
	f.Fuzz(func(t *testing.T, in []byte) {
		g := newGuest(t)
		g.m.lastLocal = local - 1 // the seeds' port for this connection
		_, _ = g.establish(52)
		l := g.hostListen(fuzzHostPort)
		s := &gsock{g: g, gport: 40000, hport: fuzzHostPort, bufAlloc: 1 << 16}
		s.send(opRequest, nil)
		g.expect(opResponse)
		if c, err := l.Accept(); err == nil {
			t.Cleanup(func() { c.Close() })
		}
		g.txUsed()
		for len(in) >= 3 {
			layout := in[0]
			n := min(int(binary.LittleEndian.Uint16(in[1:])), len(in)-3, txSlotSize)
			raw := in[3 : 3+n]
			in = in[3+n:]
			g.sendChain(layout, raw)
			g.pump()
			if got := g.txUsed(); got != 1 {
				t.Fatalf("%d TX chains returned for 1", got)
			}
			for {
				if _, _, ok := g.recv(); !ok {
					break
				}
			}
			if g.rxOut < 16 {
				g.postRX(32)
			}
			for _, c := range g.m.conns {
				if c.buffered() > bufAlloc || uint32(c.buf.len()) > c.buffered() {
					t.Fatalf("connection %+v holds %d bytes (credit %d)", c.key, c.buf.len(), bufAlloc)
				}
			}
			if len(g.m.conns)+g.m.handshakes > maxConns {
				t.Fatalf("%d connections", len(g.m.conns))
			}
		}
	})
}

// sendChain queues raw bytes as a TX chain whose layout the fuzzer picks:
// one descriptor, or two split at an offset taken from layout.
func (g *guest) sendChain(layout byte, raw []byte) {
	a0 := txBase + uint64(g.txNext)*txSlotSize
	split := int(layout>>1) % (len(raw) + 1)
	if layout&1 == 0 || len(raw) == 0 {
		g.write(a0, raw)
		g.drv[txQueue].AddChain(virtiotest.Buf{Addr: a0, Len: uint32(len(raw))})
		g.txNext = (g.txNext + 1) % testQSize
	} else {
		a1 := txBase + uint64((g.txNext+1)%testQSize)*txSlotSize
		g.write(a0, raw[:split])
		g.write(a1, raw[split:])
		g.drv[txQueue].AddChain(virtiotest.Buf{Addr: a0, Len: uint32(split)}, virtiotest.Buf{Addr: a1, Len: uint32(len(raw) - split)})
		g.txNext = (g.txNext + 2) % testQSize
	}
	g.notify[txQueue].Signal()
}

// FuzzConnectLine checks the host handshake parser: it never panics, and
// what it accepts is exactly "connect", spaces, a decimal 32-bit port.
func FuzzConnectLine(f *testing.F) {
	for _, s := range []string{"CONNECT 52", "connect 0", " CONNECT  7 ", "CONNECT 99999999999", "CONNECT", "x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		port, ok := parseConnect(line)
		if !ok {
			return
		}
		f := bytes.Fields(line)
		if len(f) != 2 || !bytes.EqualFold(f[0], []byte("CONNECT")) {
			t.Fatalf("accepted %q", line)
		}
		if strconv.FormatUint(uint64(port), 10) != string(bytes.TrimLeft(f[1], "0")) && port != 0 {
			t.Fatalf("%q parsed as port %d", line, port)
		}
	})
}
