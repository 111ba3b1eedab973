package vsock

import (
	"io"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// TestSteadyStateAllocs: moving data both ways through an established
// connection allocates nothing, including when the host socket is full
// and data waits in pooled buffers.
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates in system calls")
	}
	g := newGuest(t)
	host, s := g.establish(52)
	const n = 4000
	payload := pattern(3, n)
	in := make([]byte, 64<<10)
	var hb [hdrSize]byte
	var rx [rxBufSize]byte

	guestSend := func(size int) {
		h := s.hdr(opRW)
		h.len = uint32(size)
		h.encode(&hb)
		a := txBase + uint64(g.txNext)*txSlotSize
		g.mem.WriteAt(hb[:], a)
		g.mem.WriteAt(in[:size], a+hdrSize)
		g.drv[txQueue].AddChain(virtiotest.Buf{Addr: a, Len: uint32(hdrSize + size)})
		g.txNext = (g.txNext + 1) % testQSize
		g.notify[txQueue].Signal()
	}
	drainRX := func() int {
		got := 0
		for {
			id, l, ok := g.drv[rxQueue].NextUsed()
			if !ok {
				return got
			}
			g.rxOut--
			g.mem.ReadAt(rx[:l], rxBase+uint64(id)*rxBufSize)
			var h header
			h.decode((*[hdrSize]byte)(rx[:hdrSize]))
			if h.op == opRW {
				s.fwdCnt += h.len
				got += int(h.len)
			}
		}
	}
	postRX := func() {
		for g.rxOut < 8 {
			a := rxBase + uint64(g.rxNext)*rxBufSize
			g.drv[rxQueue].AddChain(virtiotest.Buf{Addr: a, Len: rxBufSize, Write: true})
			g.rxNext = (g.rxNext + 1) % testQSize
			g.rxOut++
		}
		g.notify[rxQueue].Signal()
	}
	step := func() {
		// Guest to host.
		guestSend(n)
		g.pump()
		if _, err := io.ReadFull(host, in[:n]); err != nil {
			t.Fatal(err)
		}
		g.txUsed()
		// Host to guest.
		host.Write(payload)
		postRX()
		g.pump()
		if got := drainRX(); got != n {
			t.Fatalf("guest received %d bytes, want %d", got, n)
		}
	}
	if a := testing.AllocsPerRun(300, step); a != 0 {
		t.Errorf("%v allocations per round trip, want 0", a)
	}

	// Back-pressure: the host stops reading, data waits in chunks; then
	// it reads everything. Warm the pool first.
	c := g.m.conns[connKey{s.hport, s.gport}]
	// A small socket buffer, so that the device's own buffer fills.
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	buffered := 0
	backlog := func() {
		for range 7 {
			guestSend(32 << 10)
			g.pump()
			g.txUsed()
			postRX()
			drainRX()
		}
		buffered = max(buffered, c.buf.len())
		want := 7 * 32 << 10
		for got := 0; got < want; {
			k, err := host.Read(in[:min(len(in), want-got)])
			if err != nil {
				t.Fatal(err)
			}
			got += k
			g.pump()
			postRX()
			drainRX()
		}
	}
	backlog()
	if buffered == 0 {
		t.Fatal("no data waited in the buffer")
	}
	if a := testing.AllocsPerRun(20, backlog); a != 0 {
		t.Errorf("%v allocations per backlog episode, want 0", a)
	}
}
