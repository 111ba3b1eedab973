package console

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

const (
	single = virtio.FeatureVersion1 | virtio.FeatureIndirectDesc
	multi  = single | FeatureMultiport
)

// syncBuffer is a console output safe to read while the worker writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestNewAndFeatures(t *testing.T) {
	d, err := New(Config{Console: &ConsolePort{}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Type() != virtio.IDConsole || d.Features()&FeatureMultiport != 0 || len(d.QueueMaxSizes()) != 2 || !d.HasConsole() {
		t.Errorf("console-only device: type %v features %#x queues %v", d.Type(), d.Features(), d.QueueMaxSizes())
	}
	s1, s2 := listen(t, "a"), listen(t, "b")
	d, err = New(Config{Channels: []Channel{{Name: "a", Socket: s1}, {Name: "b", Socket: s2}}})
	if err != nil {
		t.Fatal(err)
	}
	sizes := d.QueueMaxSizes()
	if d.Features()&FeatureMultiport == 0 || len(sizes) != 8 || sizes[ctrlRxQueue] != ControlQueueSize || sizes[4] != DataQueueSize || d.HasConsole() {
		t.Errorf("channel device: features %#x queues %v", d.Features(), sizes)
	}
	if d.Enqueue([]byte("x")) != 0 {
		t.Error("a device without a console took input")
	}
	var cfg [configSize]byte
	d.ReadConfig(0, cfg[:])
	if got := le32(cfg[configMaxPorts:]); got != 3 {
		t.Errorf("max_nr_ports = %d, want 3 (port 0 and two channels)", got)
	}
}

func TestConfigSpaceBounds(t *testing.T) {
	d, err := New(Config{Console: &ConsolePort{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		off uint64
		n   int
	}{{0, 12}, {4, 4}, {10, 8}, {12, 4}, {1 << 40, 4}, {^uint64(0), 8}, {^uint64(0) - 2, 4}, {0, 0}} {
		b := bytes.Repeat([]byte{0xaa}, c.n)
		d.ReadConfig(c.off, b)
		for i, v := range b {
			want := byte(0)
			if o := c.off + uint64(i); c.off < configSize && o < configSize {
				want = d.config[o]
			}
			if v != want {
				t.Errorf("ReadConfig(%#x, %d)[%d] = %#x, want %#x", c.off, c.n, i, v, want)
			}
		}
	}
	d.WriteConfig(0, []byte{1, 2, 3, 4})
	var b [4]byte
	d.ReadConfig(configMaxPorts, b[:])
	if le32(b[:]) != 1 {
		t.Errorf("max_nr_ports = %d after a config write", le32(b[:]))
	}
}

func TestConfigValidation(t *testing.T) {
	s := listen(t, "s")
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"empty", Config{}},
		{"bad name", Config{Channels: []Channel{{Name: "a/b", Socket: s}}}},
		{"empty name", Config{Channels: []Channel{{Name: "", Socket: s}}}},
		{"long name", Config{Channels: []Channel{{Name: string(bytes.Repeat([]byte("n"), MaxNameLen+1)), Socket: s}}}},
		{"no socket", Config{Channels: []Channel{{Name: "a"}}}},
		{"duplicate name", Config{Channels: []Channel{{Name: "a", Socket: s}, {Name: "a", Socket: listen(t, "t")}}}},
		{"shared socket", Config{Channels: []Channel{{Name: "a", Socket: s}, {Name: "b", Socket: s}}}},
		{"too many", Config{Channels: make([]Channel, MaxChannels+1)}},
	} {
		if _, err := New(c.cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", c.name, err)
		}
	}
	if err := ValidName("org.qemu.guest_agent.0"); err != nil {
		t.Error(err)
	}
}

// TestConsolePort runs a single-port console with its worker: host input
// reaches the guest's receive buffers, guest output reaches the writer.
func TestConsolePort(t *testing.T) {
	var out syncBuffer
	r := newRig(t, Config{Console: &ConsolePort{Output: &out}}, single)
	// Input offered before the driver is up waits.
	if n := r.dev.Enqueue([]byte("early ")); n != 6 {
		t.Fatalf("Enqueue took %d bytes", n)
	}
	r.start()
	r.g[0].post(4, 8)
	r.kick(0)
	r.dev.Enqueue([]byte("input\x00\xff"))
	// Input waits until the guest has written to its console and
	// paused.
	time.Sleep(20 * time.Millisecond)
	if r.g[0].UsedIdx() != 0 {
		t.Fatal("input delivered before the guest's console spoke")
	}
	r.g[1].send([]byte("hello, "))
	r.kick(1)
	var got []byte
	eventually(t, func() bool {
		for {
			b, ok := r.g[0].taken(t)
			if !ok {
				break
			}
			if len(b) > 8 {
				t.Fatalf("%d bytes in an 8-byte buffer", len(b))
			}
			got = append(got, b...)
		}
		return len(got) >= 13
	}, "console input")
	if string(got) != "early input\x00\xff" {
		t.Errorf("guest received %q", got)
	}
	r.g[1].send([]byte("world\n"))
	r.kick(1)
	eventually(t, func() bool { return out.String() == "hello, world\n" }, "console output (have %q)", &out)
	eventually(t, func() bool { return r.g[1].UsedIdx() == 2 }, "transmit buffers back")
	if r.rec.Interrupts.Load() == 0 {
		t.Error("no interrupt")
	}
	if m := r.dev.Metrics(); m.ID != "console" || m.RxBytes != 13 || m.TxBytes != 13 {
		t.Errorf("Metrics() = %+v, want 13 bytes each way on \"console\"", m)
	}
}

// TestConsoleInputBounded: input beyond the staging buffer is refused
// until the guest takes some, never dropped.
func TestConsoleInputBounded(t *testing.T) {
	r := newRig(t, Config{Console: &ConsolePort{}}, single)
	r.startSync()
	r.openConsole()
	big := pattern(consoleInputSize+100, 0)
	if n := r.dev.Enqueue(big); n != consoleInputSize {
		t.Fatalf("Enqueue took %d of %d bytes", n, len(big))
	}
	if n := r.dev.Enqueue(big[consoleInputSize:]); n != 0 {
		t.Fatalf("a full buffer took %d bytes", n)
	}
	r.g[0].post(1, bufSize)
	r.pass()
	b, _ := r.g[0].taken(t)
	if !bytes.Equal(b, big[:consoleInputSize]) {
		t.Fatalf("guest got %d bytes", len(b))
	}
	if n := r.dev.Enqueue(big[consoleInputSize:]); n != 100 {
		t.Errorf("Enqueue after the guest read took %d bytes", n)
	}
}

// failingWriter fails every write.
type failingWriter struct{ n int }

func (f *failingWriter) Write([]byte) (int, error) { f.n++; return 0, errors.New("disk full") }

// TestConsoleOutputFailure: a broken console writer drops output but
// keeps the guest running.
func TestConsoleOutputFailure(t *testing.T) {
	w := &failingWriter{}
	r := newRig(t, Config{Console: &ConsolePort{Output: w}}, single)
	r.startSync()
	r.g[1].send([]byte("one"))
	r.g[1].send([]byte("two"))
	r.pass()
	if r.g[1].UsedIdx() != 2 || w.n != 2 {
		t.Errorf("used %d, writes %d", r.g[1].UsedIdx(), w.n)
	}
}

// handshake runs the multiport start-up as Linux does: control buffers,
// DEVICE_READY, then PORT_READY for each announced port.
func handshake(t *testing.T, r *rig) []msg {
	t.Helper()
	r.g[ctrlRxQueue].post(8, 256)
	r.ctrl(badID, EventDeviceReady, 1)
	r.pass()
	adds := r.received()
	for _, m := range adds {
		if m.Event != EventPortAdd {
			t.Fatalf("unexpected message %+v before PORT_READY", m)
		}
		r.g[rxQueue(int(m.ID))].post(4, bufSize)
		r.ctrl(m.ID, EventPortReady, 1)
	}
	r.pass()
	return append(adds, r.received()...)
}

func TestMultiportHandshake(t *testing.T) {
	var out syncBuffer
	s1, s2 := listen(t, "ga"), listen(t, "other")
	r := newRig(t, Config{Console: &ConsolePort{Output: &out}, Channels: []Channel{
		{Name: "org.qemu.guest_agent.0", Socket: s1}, {Name: "other", Socket: s2}}}, multi)
	dial(t, s2) // connected before the guest starts
	r.startSync()
	got := handshake(t, r)
	want := []msg{
		{Control{0, EventPortAdd, 1}, ""},
		{Control{1, EventPortAdd, 1}, ""},
		{Control{2, EventPortAdd, 1}, ""},
		{Control{0, EventConsolePort, 1}, ""},
		{Control{0, EventPortOpen, 1}, ""},
		{Control{1, EventPortName, 1}, "org.qemu.guest_agent.0"},
		{Control{2, EventPortName, 1}, "other"},
		{Control{2, EventPortOpen, 1}, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("messages %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// The console port carries output as soon as it exists.
	r.g[txQueue(0)].send([]byte("console out"))
	r.pass()
	if out.String() != "console out" {
		t.Errorf("console output %q", out.String())
	}
	// A client connecting later is announced; one leaving is too.
	r.g[ctrlRxQueue].post(8, 256)
	c := dial(t, s1)
	r.pass()
	if m := r.received(); len(m) != 1 || m[0].Control != (Control{1, EventPortOpen, 1}) {
		t.Fatalf("after connect: %+v", m)
	}
	c.Close()
	r.ctrl(1, EventPortOpen, 1) // the guest opens, so the hang-up is read
	r.pass()
	if m := r.received(); len(m) != 1 || m[0].Control != (Control{1, EventPortOpen, 0}) {
		t.Fatalf("after disconnect: %+v", m)
	}
	// A second DEVICE_READY announces the ports again; PORT_READY then
	// repeats the port's description.
	r.ctrl(badID, EventDeviceReady, 1)
	r.pass()
	if m := r.received(); len(m) != 3 {
		t.Fatalf("after a second DEVICE_READY: %+v", m)
	}
}

// TestControlWaitsForBuffers: messages wait for control buffers and are
// all sent once the guest posts some.
func TestControlWaitsForBuffers(t *testing.T) {
	s := listen(t, "s")
	r := newRig(t, Config{Channels: []Channel{{Name: "n", Socket: s}}}, multi)
	r.startSync()
	r.ctrl(badID, EventDeviceReady, 1)
	r.pass()
	if m := r.received(); len(m) != 0 {
		t.Fatalf("sent %+v without buffers", m)
	}
	r.g[ctrlRxQueue].post(1, 4) // too small for a header: returned empty
	r.g[ctrlRxQueue].post(1, 256)
	r.pass()
	if id, n, _ := r.g[ctrlRxQueue].NextUsed(); n != 0 {
		t.Fatalf("tiny buffer %d came back with %d bytes", id, n)
	}
	if m := r.received(); len(m) != 1 || m[0].Control != (Control{1, EventPortAdd, 1}) {
		t.Fatalf("got %+v, want PORT_ADD for port 1 (the only port)", m)
	}
}

// channelRig starts a worker-driven device with one channel and a
// connected client, and runs the handshake; the guest has not opened the
// port.
func channelRig(t *testing.T) (*rig, *Socket) {
	t.Helper()
	s := listen(t, "ch")
	r := newRig(t, Config{Channels: []Channel{{Name: "org.qemu.guest_agent.0", Socket: s}}}, multi)
	r.g[ctrlRxQueue].post(16, 256)
	r.start()
	r.ctrl(badID, EventDeviceReady, 1)
	if m := r.waitMsgs(1); m[0].Control != (Control{1, EventPortAdd, 1}) {
		t.Fatalf("got %+v", m)
	}
	r.ctrl(1, EventPortReady, 1)
	r.waitMsgs(1)
	return r, s
}

// collect reads the guest's receive buffers of port 1 until n bytes came.
func collect(t *testing.T, r *rig, n int, repost bool) []byte {
	t.Helper()
	var got []byte
	eventually(t, func() bool {
		for {
			b, ok := r.g[rxQueue(1)].taken(t)
			if !ok {
				break
			}
			got = append(got, b...)
			if repost {
				r.g[rxQueue(1)].post(1, bufSize)
				r.kick(rxQueue(1))
			}
		}
		return len(got) >= n
	}, "%d bytes in the guest", n)
	return got
}

func TestChannelBothWays(t *testing.T) {
	r, s := channelRig(t)
	c := dial(t, s)
	if m := r.waitMsgs(1); m[0].Control != (Control{1, EventPortOpen, 1}) {
		t.Fatalf("got %+v", m)
	}
	// Host to guest: held until the guest opens the port.
	in := pattern(10000, 7)
	if _, err := c.Write(in); err != nil {
		t.Fatal(err)
	}
	r.g[rxQueue(1)].post(4, bufSize)
	r.kick(rxQueue(1))
	time.Sleep(50 * time.Millisecond)
	if r.g[rxQueue(1)].UsedIdx() != 0 {
		t.Fatal("data reached a port the guest has not opened")
	}
	r.ctrl(1, EventPortOpen, 1)
	if got := collect(t, r, len(in), true); !bytes.Equal(got, in) {
		t.Fatalf("guest received %d bytes, differing", len(got))
	}
	// Guest to host: every byte value, in several requests.
	out := pattern(9000, 3)
	for i := 0; i < len(out); i += 3000 {
		r.g[txQueue(1)].send(out[i : i+3000])
	}
	r.kick(txQueue(1))
	got := make([]byte, len(out))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, out) {
		t.Fatalf("host read %v, equal %v", err, bytes.Equal(got, out))
	}
	eventually(t, func() bool { return r.g[txQueue(1)].UsedIdx() == 3 }, "transmit buffers back")
	if err := r.rec.Failure(); err != nil {
		t.Fatal(err)
	}
}

// TestChannelHostNotReading: guest output the client does not read stays
// in the queue, then all of it arrives in order.
func TestChannelHostNotReading(t *testing.T) {
	r, s := channelRig(t)
	c := dial(t, s)
	r.waitMsgs(1)
	r.ctrl(1, EventPortOpen, 1)
	const chunk, n = 32 << 10, 15 // ~480 KiB: more than the socket buffers
	var want []byte
	for i := range n {
		b := pattern(chunk, byte(i))
		want = append(want, b...)
		r.g[txQueue(1)].send(b)
	}
	r.kick(txQueue(1))
	time.Sleep(200 * time.Millisecond)
	if u := r.g[txQueue(1)].UsedIdx(); u >= n {
		t.Fatalf("all %d requests completed with nobody reading", u)
	}
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("host read %v, equal %v", err, bytes.Equal(got, want))
	}
	eventually(t, func() bool { return r.g[txQueue(1)].UsedIdx() == n }, "all requests back")
}

// TestChannelDisconnectKeepsBytes: the client's last bytes reach the
// guest before PORT_OPEN 0; guest output written with no client waits
// for the next one.
func TestChannelDisconnectKeepsBytes(t *testing.T) {
	r, s := channelRig(t)
	c := dial(t, s)
	r.waitMsgs(1)
	r.ctrl(1, EventPortOpen, 1)
	r.g[rxQueue(1)].post(8, bufSize)
	r.kick(rxQueue(1))
	c.Write([]byte("last words"))
	c.Close()
	if m := r.waitMsgs(1); m[0].Control != (Control{1, EventPortOpen, 0}) {
		t.Fatalf("got %+v", m)
	}
	if got := collect(t, r, 10, false); string(got) != "last words" {
		t.Fatalf("guest got %q", got)
	}
	r.g[txQueue(1)].send([]byte("for whoever comes next"))
	r.kick(txQueue(1))
	time.Sleep(50 * time.Millisecond)
	if r.g[txQueue(1)].UsedIdx() != 0 {
		t.Fatal("output taken with no client")
	}
	c2 := dial(t, s)
	r.waitMsgs(1)
	got := make([]byte, 22)
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c2, got); err != nil || string(got) != "for whoever comes next" {
		t.Fatalf("second client read %q, %v", got, err)
	}
}

// TestChannelSecondClientRefused: a second client gets end of file; the
// first keeps working.
func TestChannelSecondClientRefused(t *testing.T) {
	r, s := channelRig(t)
	c := dial(t, s)
	r.waitMsgs(1)
	c2 := dial(t, s)
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("second client read %d, %v; want EOF", n, err)
	}
	r.ctrl(1, EventPortOpen, 1)
	r.g[rxQueue(1)].post(1, bufSize)
	r.kick(rxQueue(1))
	c.Write([]byte("still here"))
	if got := collect(t, r, 10, false); string(got) != "still here" {
		t.Fatalf("guest got %q", got)
	}
}

// TestGuestCloseKeepsClient: the guest closing its port leaves the client
// connected; what it sends waits for the next open.
func TestGuestCloseKeepsClient(t *testing.T) {
	r, s := channelRig(t)
	var events []bool
	var mu sync.Mutex
	r.dev.cfg.OnPortOpen = func(name string, open bool) {
		mu.Lock()
		events = append(events, open)
		mu.Unlock()
	}
	c := dial(t, s)
	r.waitMsgs(1)
	r.ctrl(1, EventPortOpen, 1)
	r.ctrl(1, EventPortOpen, 0)
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(events) == 2 }, "open and close events")
	c.Write([]byte("queued"))
	r.g[rxQueue(1)].post(1, bufSize)
	r.kick(rxQueue(1))
	time.Sleep(50 * time.Millisecond)
	if r.g[rxQueue(1)].UsedIdx() != 0 || !s.Connected() {
		t.Fatal("data delivered to a closed port, or the client was dropped")
	}
	r.ctrl(1, EventPortOpen, 1)
	if got := collect(t, r, 6, false); string(got) != "queued" {
		t.Fatalf("guest got %q", got)
	}
}

// TestResetKeepsClient: a driver reset stops the worker; the client stays
// and a new activation announces it again.
func TestResetKeepsClient(t *testing.T) {
	r, s := channelRig(t)
	dial(t, s)
	r.waitMsgs(1)
	r.dev.Reset()
	r.dev.Reset()
	if !s.Connected() {
		t.Fatal("client dropped by a reset")
	}
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	if err := r.dev.Activate(r.ctx()); !errors.Is(err, virtio.ErrAlreadyActive) {
		t.Errorf("second Activate: %v", err)
	}
}

func TestActivateChecks(t *testing.T) {
	s := listen(t, "s")
	r := newRig(t, Config{Channels: []Channel{{Name: "n", Socket: s}}}, multi)
	ctx := r.ctx()
	ctx.Queues = ctx.Queues[:3]
	if err := r.dev.Activate(ctx); !errors.Is(err, virtio.ErrMissingQueue) {
		t.Errorf("Activate with missing queues: %v", err)
	}
	ctx = r.ctx()
	unready, _ := virtio.NewQueue(ControlQueueSize)
	ctx.Queues = append([]*virtio.Queue(nil), ctx.Queues...)
	ctx.Queues[ctrlTxQueue] = unready
	if err := r.dev.Activate(ctx); !errors.Is(err, virtio.ErrMissingQueue) {
		t.Errorf("Activate without control queues: %v", err)
	}
	// A driver that refuses MULTIPORT gets port 0 only; here there is
	// none, and the device idles.
	r.feat = single
	r.start()
	r.g[txQueue(1)].send([]byte("x"))
	r.kick(txQueue(1))
	time.Sleep(20 * time.Millisecond)
	if r.g[txQueue(1)].UsedIdx() != 0 || r.rec.Failure() != nil {
		t.Error("a port beyond 0 served without multiport")
	}
}

// TestBrokenQueueNeedsReset: an impossible available index makes the
// device ask for a reset; the VMM carries on.
func TestBrokenQueueNeedsReset(t *testing.T) {
	r, _ := channelRig(t)
	r.g[ctrlTxQueue].SetAvailIdx(1000)
	r.kick(ctrlTxQueue)
	var err error
	eventually(t, func() bool { err = r.rec.Failure(); return err != nil }, "NEEDS_RESET")
	if !errors.Is(err, virtio.ErrAvailIndex) {
		t.Errorf("failure %v", err)
	}
}

// TestMalformedChains: bad chains on data and control queues are
// returned empty and the device goes on.
func TestMalformedChains(t *testing.T) {
	var out syncBuffer
	s := listen(t, "s")
	r := newRig(t, Config{Console: &ConsolePort{Output: &out}, Channels: []Channel{{Name: "n", Socket: s}}}, multi)
	r.startSync()
	loop := func(g *gq) {
		h := g.WriteChain(virtiotest.Buf{Addr: g.Alloc(8), Len: 8})
		g.SetDesc(g.Desc, h, g.Alloc(8), 8, virtio.DescFlagNext, h)
		g.Publish(h)
	}
	loop(r.g[ctrlTxQueue])
	loop(r.g[ctrlRxQueue])
	loop(r.g[txQueue(0)])
	r.g[ctrlRxQueue].post(8, 256)
	r.ctrl(badID, EventDeviceReady, 1)
	r.pass()
	if id, n, ok := r.g[ctrlRxQueue].NextUsed(); !ok || n != 0 {
		t.Fatalf("malformed control buffer returned as %d/%d/%v", id, n, ok)
	}
	if m := r.received(); len(m) != 2 {
		t.Fatalf("messages after malformed chains: %+v", m)
	}
	if r.g[ctrlTxQueue].UsedIdx() != 2 || r.g[txQueue(0)].UsedIdx() != 1 {
		t.Error("malformed requests were not returned")
	}
}

// TestServeAllocs: serving console and channel traffic allocates nothing.
func TestServeAllocs(t *testing.T) {
	s := listen(t, "s")
	r := newRig(t, Config{Console: &ConsolePort{Output: io.Discard}, Channels: []Channel{{Name: "n", Socket: s}}}, multi)
	c := dial(t, s)
	r.startSync()
	handshake(t, r)
	r.ctrl(0, EventPortOpen, 1) // Linux opens a console port when it makes it hvc
	r.ctrl(1, EventPortOpen, 1)
	r.pass()
	r.received()
	rx0, tx0, rx1, tx1 := r.g[rxQueue(0)], r.g[txQueue(0)], r.g[rxQueue(1)], r.g[txQueue(1)]
	in0, out0, in1, out1 := rx0.Alloc(bufSize), tx0.Alloc(64), rx1.Alloc(bufSize), tx1.Alloc(64)
	hostBuf := make([]byte, 64)
	msg := []byte("0123456789abcdef")
	allocs := testing.AllocsPerRun(200, func() {
		rx0.AddChain(virtiotest.Buf{Addr: in0, Len: bufSize, Write: true})
		tx0.AddChain(virtiotest.Buf{Addr: out0, Len: 64})
		rx1.AddChain(virtiotest.Buf{Addr: in1, Len: bufSize, Write: true})
		tx1.AddChain(virtiotest.Buf{Addr: out1, Len: 64})
		r.dev.Enqueue(msg)
		c.Write(msg)
		r.dev.svc.Lock()
		err := r.dev.service()
		r.dev.svc.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		io.ReadFull(c, hostBuf)
		rx0.NextUsed()
		tx0.NextUsed()
		rx1.NextUsed()
		tx1.NextUsed()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per pass, want 0", allocs)
	}
	if rx1.UsedIdx() < 200 || tx1.UsedIdx() < 200 || rx0.UsedIdx() < 200 || tx0.UsedIdx() < 200 {
		t.Errorf("traffic missing: used %d %d %d %d", rx0.UsedIdx(), tx0.UsedIdx(), rx1.UsedIdx(), tx1.UsedIdx())
	}
}

func TestControlRoundTrip(t *testing.T) {
	var b [ControlSize]byte
	c := Control{ID: 0x01020304, Event: EventPortName, Value: 0xbeef}
	c.Put(b[:])
	if binary.LittleEndian.Uint32(b[:]) != 0x01020304 || b[4] != 7 || b[6] != 0xef {
		t.Errorf("encoded %x", b)
	}
	if got, ok := ParseControl(b[:]); !ok || got != c {
		t.Errorf("ParseControl = %+v, %v", got, ok)
	}
	if _, ok := ParseControl(b[:7]); ok {
		t.Error("a 7-byte message parsed")
	}
}

// TestConsoleInputGate: a single-port console holds host input until the
// guest has written to it and then paused for gateSettle, so that input
// cannot reach Linux while it is still registering the port (it would
// free it).
func TestConsoleInputGate(t *testing.T) {
	r := newRig(t, Config{Console: &ConsolePort{}}, single)
	now := time.Unix(1000, 0)
	r.dev.now = func() time.Time { return now }
	r.startSync()
	r.g[0].post(2, 16)
	r.dev.Enqueue([]byte("typed early"))
	r.pass()
	if r.g[0].UsedIdx() != 0 || r.dev.gateWait() != -1 {
		t.Fatal("input delivered before any guest output")
	}
	r.g[1].send([]byte("log line 1\n"))
	r.pass()
	now = now.Add(gateSettle / 2)
	r.g[1].send([]byte("log line 2\n")) // output goes on: the wait starts again
	r.pass()
	now = now.Add(gateSettle - time.Millisecond)
	r.pass()
	if r.g[0].UsedIdx() != 0 || r.dev.gateWait() != time.Millisecond {
		t.Fatalf("gate open %v too early (wait %v)", r.g[0].UsedIdx(), r.dev.gateWait())
	}
	now = now.Add(time.Millisecond)
	r.pass()
	if b, _ := r.g[0].taken(t); string(b) != "typed early" {
		t.Fatalf("guest got %q", b)
	}
	if r.dev.gateWait() != -1 {
		t.Error("open gate still waits")
	}
	// A reset closes it again.
	r.dev.Reset()
	r.startSync()
	if !r.dev.gateClosed || r.dev.ports[0].guestOpen {
		t.Error("gate open after a reset")
	}
}
