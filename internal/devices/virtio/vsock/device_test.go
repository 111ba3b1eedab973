package vsock

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// waitPacket waits for the device goroutine to produce a packet.
func (g *guest) waitPacket(op uint16) (header, []byte) {
	g.t.Helper()
	deadline := time.Now().Add(readWait)
	for time.Now().Before(deadline) {
		if h, p, ok := g.recv(); ok {
			if h.op != op {
				g.t.Fatalf("got %s, want %s", opName(h.op), opName(op))
			}
			return h, p
		}
		time.Sleep(time.Millisecond)
	}
	g.t.Fatalf("no %s packet", opName(op))
	return header{}, nil
}

func newDevice(t *testing.T) (*Device, *guest) {
	t.Helper()
	g := newGuestQueues(t)
	d, err := New(g.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, g
}

// TestDeviceLifecycle runs the device goroutine: a host connection
// round trip, Reset closing the socket, Activate binding it again, Close.
func TestDeviceLifecycle(t *testing.T) {
	d, g := newDevice(t)
	if d.Type() != virtio.IDVsock || len(d.QueueMaxSizes()) != 3 || d.Features()&virtio.FeatureVersion1 == 0 {
		t.Fatal("identity")
	}
	host := hostDial(t, g.cfg.UDSPath, 52) // before activation: waits in the backlog
	g.postRX(16)
	if err := d.Activate(g.ctx()); err != nil {
		t.Fatal(err)
	}
	if err := d.Activate(g.ctx()); !errors.Is(err, virtio.ErrAlreadyActive) {
		t.Errorf("second Activate: %v", err)
	}
	h, _ := g.waitPacket(opRequest)
	s := &gsock{g: g, gport: 52, hport: h.srcPort, bufAlloc: 1 << 20}
	s.send(opResponse, nil)
	readN(t, host, len("OK \n")+len(itoa(h.srcPort)))
	io.WriteString(host, "x")
	if _, p := g.waitPacket(opRW); string(p) != "x" {
		t.Fatalf("%q", p)
	}

	d.Reset()
	expectEOF(t, host)
	if _, err := os.Stat(g.cfg.UDSPath); !os.IsNotExist(err) {
		t.Errorf("socket file after Reset: %v", err)
	}
	d.Reset()
	g2 := newGuestQueues(t)
	g2.cfg = g.cfg
	g2.drv[eventQueue].AddChain(g2.evBuf())
	if err := d.Activate(g2.ctx()); err != nil {
		t.Fatalf("Activate after Reset: %v", err)
	}
	if _, err := os.Stat(g.cfg.UDSPath); err != nil {
		t.Errorf("socket not bound again: %v", err)
	}
	// The guest's connections died with the reset: it is told so.
	deadline := time.Now().Add(readWait)
	for {
		if _, n, ok := g2.drv[eventQueue].NextUsed(); ok {
			if n != 4 {
				t.Errorf("event of %d bytes", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no TRANSPORT_RESET after a reset")
		}
		time.Sleep(time.Millisecond)
	}
	d.Close()
	if _, err := os.Stat(g.cfg.UDSPath); !os.IsNotExist(err) {
		t.Errorf("socket file after Close: %v", err)
	}
	if err := d.Activate(g2.ctx()); !errors.Is(err, ErrClosed) {
		t.Errorf("Activate after Close: %v", err)
	}
}

func TestActivateNeedsQueues(t *testing.T) {
	d, g := newDevice(t)
	ctx := g.ctx()
	unready, _ := virtio.NewQueue(QueueSize)
	ctx.Queues = []*virtio.Queue{g.queues[0], unready, g.queues[2]}
	if err := d.Activate(ctx); !errors.Is(err, virtio.ErrMissingQueue) {
		t.Errorf("Activate without tx: %v", err)
	}
	ctx.Queues = ctx.Queues[:2]
	if err := d.Activate(ctx); !errors.Is(err, virtio.ErrMissingQueue) {
		t.Errorf("Activate with two queues: %v", err)
	}
}

func TestBrokenQueueNeedsReset(t *testing.T) {
	d, g := newDevice(t)
	if err := d.Activate(g.ctx()); err != nil {
		t.Fatal(err)
	}
	g.drv[txQueue].SetAvailIdx(1000)
	g.notify[txQueue].Signal()
	deadline := time.Now().Add(readWait)
	for g.irq.Failure() == nil {
		if time.Now().After(deadline) {
			t.Fatal("no NEEDS_RESET")
		}
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(g.irq.Failure(), virtio.ErrAvailIndex) {
		t.Errorf("failure %v", g.irq.Failure())
	}
	d.Reset()
}

func TestConfigSpace(t *testing.T) {
	d, _ := newDevice(t)
	var b [8]byte
	d.ReadConfig(0, b[:])
	if binary.LittleEndian.Uint64(b[:]) != testCID {
		t.Errorf("guest_cid %x", b)
	}
	var w [4]byte
	d.ReadConfig(4, w[:])
	if w != [4]byte{} {
		t.Errorf("upper half %x", w)
	}
	d.ReadConfig(0, w[:])
	if binary.LittleEndian.Uint32(w[:]) != testCID {
		t.Errorf("lower half %x", w)
	}
	d.ReadConfig(6, w[:]) // straddles the end
	d.ReadConfig(1<<63, w[:])
	if w != [4]byte{} {
		t.Errorf("beyond the end %x", w)
	}
	d.WriteConfig(0, []byte{9, 9, 9, 9, 9, 9, 9, 9})
	d.ReadConfig(0, b[:])
	if binary.LittleEndian.Uint64(b[:]) != testCID {
		t.Error("config space is writable")
	}
}

// TestTransportResetAndState: a restored device sends TRANSPORT_RESET
// when activated; a live TransportReset drops connections and sends it.
func TestTransportResetAndState(t *testing.T) {
	d, g := newDevice(t)
	var _ virtio.Snapshotter = d
	if s := d.State(); s.CID != testCID || s.UDSPath != g.cfg.UDSPath {
		t.Errorf("state %+v", s)
	}
	for _, bad := range []string{`{"CID": 1}`, `{"CID": 4294967295}`, `not json`} {
		if err := d.RestoreState([]byte(bad)); !errors.Is(err, ErrRestore) {
			t.Errorf("RestoreState(%s): %v", bad, err)
		}
	}
	saved, err := d.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	// Saved with another CID: the device keeps its configured one (the
	// guest reads it again on the event).
	saved = bytes.Replace(saved, []byte(`"CID":3`), []byte(`"CID":42`), 1)
	if err := d.RestoreState(saved); err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	d.ReadConfig(0, b[:])
	if binary.LittleEndian.Uint64(b[:]) != testCID {
		t.Errorf("CID after restore %x", b)
	}
	g.drv[eventQueue].AddChain(g.evBuf())
	if err := d.Activate(g.ctx()); err != nil {
		t.Fatal(err)
	}
	waitUsed := func() uint32 {
		deadline := time.Now().Add(readWait)
		for time.Now().Before(deadline) {
			if id, n, ok := g.drv[eventQueue].NextUsed(); ok {
				if got, _ := g.mem.Uint32(evBase + uint64(id)*16); got != eventTransportReset {
					t.Errorf("event id %d", got)
				}
				return n
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatal("no event")
		return 0
	}
	if n := waitUsed(); n != 4 {
		t.Fatalf("event length %d", n)
	}
	if err := d.Restore(State{CID: 42}); !errors.Is(err, ErrRestore) {
		t.Errorf("Restore while active: %v", err)
	}
	// A live reset: the connection goes, the event comes.
	host := hostDial(t, g.cfg.UDSPath, 0)
	g.drv[eventQueue].AddChain(g.evBuf())
	g.notify[eventQueue].Signal()
	time.Sleep(10 * time.Millisecond)
	d.TransportReset()
	waitUsed()
	expectEOF(t, host)
	// While inactive, the event waits for the next activation.
	d.Reset()
	d.TransportReset()
	g2 := newGuestQueues(t)
	t.Cleanup(d.Reset) // before g2's memory goes
	g2.cfg = g.cfg
	g2.drv[eventQueue].AddChain(g2.evBuf())
	if err := d.Activate(g2.ctx()); err != nil {
		t.Fatal(err)
	}
	g = g2
	waitUsed()
}

func TestSocketPath(t *testing.T) {
	dir := shortDir(t)
	// A regular file is not replaced.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := New(Config{CID: 3, UDSPath: file}); !errors.Is(err, ErrNotSocket) {
		t.Errorf("over a file: %v", err)
	}
	// A live socket is not stolen.
	live := filepath.Join(dir, "live")
	l, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{CID: 3, UDSPath: live}); !errors.Is(err, ErrSocketInUse) {
		t.Errorf("over a live socket: %v", err)
	}
	l.Close()
	// A stale one (its owner died without removing it) is.
	stale := filepath.Join(dir, "stale")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	d, err := New(Config{CID: 3, UDSPath: stale})
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	d.Close()
	// A missing directory.
	if _, err := New(Config{CID: 3, UDSPath: filepath.Join(dir, "no", "such")}); err == nil {
		t.Error("socket in a missing directory")
	}
	if _, err := New(Config{CID: 2, UDSPath: stale}); !errors.Is(err, ErrConfig) {
		t.Errorf("CID 2: %v", err)
	}
}

func TestParseConfig(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Config
		ok   bool
	}{
		{"cid=3,uds=/tmp/v.sock", Config{3, "/tmp/v.sock"}, true},
		{"uds=/tmp/v.sock,cid=4294967294", Config{4294967294, "/tmp/v.sock"}, true},
		{"guest_cid=7,uds_path=/a", Config{7, "/a"}, true},
		{"cid=3", Config{}, false},
		{"uds=/a", Config{}, false},
		{"cid=2,uds=/a", Config{}, false},
		{"cid=4294967295,uds=/a", Config{}, false},
		{"cid=x,uds=/a", Config{}, false},
		{"cid=3,uds=", Config{}, false},
		{"cid=3,uds=/a,port=4", Config{}, false},
		{"cid=3,uds", Config{}, false},
		{"cid=3,uds=/" + string(bytes.Repeat([]byte("a"), 120)), Config{}, false},
	} {
		got, err := ParseConfig(c.in)
		if c.ok != (err == nil) || got != c.want {
			t.Errorf("ParseConfig(%q) = %+v, %v", c.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("ParseConfig(%q): %v does not wrap ErrConfig", c.in, err)
		}
	}
}
