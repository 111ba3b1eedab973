package vsock

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// Layout of the fake guest's memory.
const (
	testCID    = 3
	memSize    = 64 << 20
	rxBufSize  = 4096
	txSlotSize = 72 << 10
	rxBase     = 0x100000
	txBase     = 0x200000
	evBase     = 0x2000000
	testQSize  = 256
	testFeats  = features
	readWait   = 5 * time.Second
	hostPortLo = 1 << 30
)

// recorder is the transport side of an activation.
type recorder = virtiotest.Recorder

// guest is a fake guest driver for the three queues, plus the host
// socket path; the muxer is driven synchronously with pump.
type guest struct {
	t      testing.TB
	mem    *guestmem.Memory
	drv    [numQueues]*virtiotest.Driver
	queues [numQueues]*virtio.Queue
	notify [numQueues]*hostos.EventFD
	irq    *recorder
	cfg    Config
	lis    *listener
	m      *muxer

	rxNext, txNext, evNext uint16
	rxOut                  int // receive buffers posted and not yet used
}

// shortDir returns a temporary directory with a path short enough for
// Unix socket names.
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vsk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func newGuestQueues(t testing.TB) *guest {
	t.Helper()
	g := &guest{t: t, irq: &recorder{}}
	g.mem = virtiotest.NewMemory(t, memSize)
	for i, base := range []uint64{0x10000, 0x20000, 0x30000} {
		g.drv[i] = virtiotest.NewDriver(t, g.mem, testQSize, base, base+0x8000)
		q, err := virtio.NewQueue(QueueSize)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Configure(g.mem, g.drv[i].Config(), testFeats); err != nil {
			t.Fatal(err)
		}
		g.queues[i] = q
		ev, err := hostos.NewEventFD()
		if err != nil {
			t.Fatal(err)
		}
		g.notify[i] = ev
		t.Cleanup(func() { ev.Close() })
	}
	g.cfg = Config{CID: testCID, UDSPath: filepath.Join(shortDir(t), "v.sock")}
	return g
}

func (g *guest) ctx() virtio.ActivateContext {
	return virtio.ActivateContext{
		Mem: g.mem, Features: testFeats, Queues: g.queues[:], Notify: g.notify[:],
		Interrupt: g.irq, NeedsReset: g.irq.NeedsReset, Log: slog.New(slog.DiscardHandler),
	}
}

// newGuest builds a listener and a muxer driven by pump.
func newGuest(t testing.TB) *guest {
	t.Helper()
	g := newGuestQueues(t)
	lis, err := listen(g.cfg.UDSPath)
	if err != nil {
		t.Fatal(err)
	}
	g.lis = lis
	m, err := newMuxer(g.cfg, lis, g.ctx(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	g.m = m
	t.Cleanup(func() {
		m.close()
		lis.close()
	})
	return g
}

// pump runs the muxer until it has no events left.
func (g *guest) pump() {
	g.t.Helper()
	for range 1000 {
		g.m.mu.Lock()
		n, err := unix.EpollWait(g.m.epfd, g.m.events, 0)
		if err != nil && err != unix.EINTR {
			g.m.mu.Unlock()
			g.t.Fatalf("epoll: %v", err)
		}
		err = g.m.dispatch(g.m.events[:max(n, 0)])
		g.m.mu.Unlock()
		if err != nil {
			g.t.Fatalf("muxer failed: %v", err)
		}
		if n <= 0 {
			return
		}
	}
	g.t.Fatal("muxer never went idle")
}

// postRX makes n receive buffers available.
func (g *guest) postRX(n int) {
	for range n {
		addr := rxBase + uint64(g.rxNext)*rxBufSize
		g.drv[rxQueue].AddChain(virtiotest.Buf{Addr: addr, Len: rxBufSize, Write: true})
		g.rxNext = (g.rxNext + 1) % testQSize
		g.rxOut++
	}
	g.notify[rxQueue].Signal()
}

// send queues a packet on the TX queue: header and payload in one
// descriptor, or in two when split.
func (g *guest) send(h header, payload []byte, split bool) {
	g.t.Helper()
	var b [hdrSize]byte
	h.encode(&b)
	a0 := txBase + uint64(g.txNext)*txSlotSize
	if !split {
		g.write(a0, append(b[:], payload...))
		g.drv[txQueue].AddChain(virtiotest.Buf{Addr: a0, Len: uint32(hdrSize + len(payload))})
		g.txNext = (g.txNext + 1) % testQSize
	} else {
		a1 := txBase + uint64((g.txNext+1)%testQSize)*txSlotSize
		g.write(a0, b[:])
		g.write(a1, payload)
		g.drv[txQueue].AddChain(virtiotest.Buf{Addr: a0, Len: hdrSize}, virtiotest.Buf{Addr: a1, Len: uint32(len(payload))})
		g.txNext = (g.txNext + 2) % testQSize
	}
	g.notify[txQueue].Signal()
}

// sendRaw queues raw bytes as one readable descriptor.
func (g *guest) sendRaw(raw []byte) {
	a := txBase + uint64(g.txNext)*txSlotSize
	g.write(a, raw)
	g.drv[txQueue].AddChain(virtiotest.Buf{Addr: a, Len: uint32(len(raw))})
	g.txNext = (g.txNext + 1) % testQSize
	g.notify[txQueue].Signal()
}

func (g *guest) write(gpa uint64, b []byte) {
	g.t.Helper()
	if err := g.mem.WriteAt(b, gpa); err != nil {
		g.t.Fatal(err)
	}
}

// txUsed drains the TX used ring and returns how many chains came back.
func (g *guest) txUsed() int {
	n := 0
	for {
		if _, _, ok := g.drv[txQueue].NextUsed(); !ok {
			return n
		}
		n++
	}
}

// recv returns the next packet the device put in a receive buffer.
func (g *guest) recv() (header, []byte, bool) {
	g.t.Helper()
	id, n, ok := g.drv[rxQueue].NextUsed()
	if !ok {
		return header{}, nil, false
	}
	g.rxOut--
	if n < hdrSize || n > rxBufSize {
		g.t.Fatalf("used length %d", n)
	}
	raw := virtiotest.Bytes(g.t, g.mem, rxBase+uint64(id)*rxBufSize, int(n))
	var h header
	h.decode((*[hdrSize]byte)(raw))
	if uint32(n) != hdrSize+h.len {
		g.t.Fatalf("used length %d for a header with len %d", n, h.len)
	}
	if h.srcCID != HostCID || h.dstCID != testCID || h.typ != typeStream {
		g.t.Fatalf("bad addressing in %+v", h)
	}
	return h, raw[hdrSize:], true
}

// expect pumps and returns the next packet, which must have op.
func (g *guest) expect(op uint16) (header, []byte) {
	g.t.Helper()
	g.pump()
	h, p, ok := g.recv()
	if !ok {
		g.t.Fatalf("no packet, want %s", opName(op))
	}
	if h.op != op {
		g.t.Fatalf("got %s (%+v), want %s", opName(h.op), h, opName(op))
	}
	return h, p
}

// expectSkipping is expect, skipping credit updates on the way.
func (g *guest) expectSkipping(op uint16) (header, []byte) {
	g.t.Helper()
	g.pump()
	for {
		h, p, ok := g.recv()
		if !ok {
			g.t.Fatalf("no packet, want %s", opName(op))
		}
		if h.op == op {
			return h, p
		}
		if h.op != opCreditUpdate {
			g.t.Fatalf("got %s (%+v), want %s", opName(h.op), h, opName(op))
		}
	}
}

// expectNone pumps and checks that nothing was received.
func (g *guest) expectNone() {
	g.t.Helper()
	g.pump()
	if h, _, ok := g.recv(); ok {
		g.t.Fatalf("unexpected %s packet %+v", opName(h.op), h)
	}
}

// gsock is the guest end of one connection, keeping its credit.
type gsock struct {
	g          *guest
	gport      uint32 // guest port
	hport      uint32 // host port
	bufAlloc   uint32
	fwdCnt     uint32
	sent       uint32
	peerAlloc  uint32
	peerFwdCnt uint32
}

func (s *gsock) hdr(op uint16) header {
	return header{srcCID: testCID, dstCID: HostCID, srcPort: s.gport, dstPort: s.hport,
		typ: typeStream, op: op, bufAlloc: s.bufAlloc, fwdCnt: s.fwdCnt}
}

func (s *gsock) send(op uint16, payload []byte) {
	h := s.hdr(op)
	h.len = uint32(len(payload))
	s.sent += h.len
	s.g.send(h, payload, len(payload) > 0 && s.gport%2 == 0)
}

// absorb records the credit and data of a packet from the device.
func (s *gsock) absorb(h header, p []byte) {
	s.peerAlloc, s.peerFwdCnt = h.bufAlloc, h.fwdCnt
	s.fwdCnt += uint32(len(p))
}

// hostDial connects to the device's socket and asks for port.
func hostDial(t testing.TB, path string, port uint32) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if port != 0 {
		if _, err := io.WriteString(c, "CONNECT "+itoa(port)+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func itoa(v uint32) string {
	var b []byte
	if v == 0 {
		return "0"
	}
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}

// readN reads exactly n bytes from c.
func readN(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(readWait))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}

// expectEOF checks that the host side sees the end of the stream.
func expectEOF(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(readWait))
	var b [16]byte
	n, err := c.Read(b[:])
	if err == nil || n != 0 {
		t.Fatalf("read %q, %v; want EOF", b[:n], err)
	}
}

// establish opens a host-initiated connection to guest port gport and
// returns both ends.
func (g *guest) establish(gport uint32) (net.Conn, *gsock) {
	g.t.Helper()
	c := hostDial(g.t, g.cfg.UDSPath, gport)
	if g.rxOut < 8 {
		g.postRX(32)
	}
	h, _ := g.expect(opRequest)
	if h.dstPort != gport || h.srcPort < hostPortLo || h.bufAlloc != bufAlloc {
		g.t.Fatalf("request %+v", h)
	}
	s := &gsock{g: g, gport: gport, hport: h.srcPort, bufAlloc: 256 << 10}
	s.absorb(h, nil)
	s.send(opResponse, nil)
	g.pump()
	line := readN(g.t, c, len("OK \n")+len(itoa(s.hport)))
	if want := "OK " + itoa(s.hport) + "\n"; string(line) != want {
		g.t.Fatalf("host got %q, want %q", line, want)
	}
	g.txUsed()
	return c, s
}

// hostListen listens on the host socket for guest connections to port.
func (g *guest) hostListen(port uint32) net.Listener {
	g.t.Helper()
	l, err := net.Listen("unix", portPath(g.cfg.UDSPath, port))
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { l.Close() })
	return l
}

// pattern is a distinct pseudo-random stream per seed.
func pattern(seed uint32, n int) []byte {
	b := make([]byte, n)
	x := seed*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

type virtioBuf = virtiotest.Buf

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
