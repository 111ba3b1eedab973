package net

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// linuxFeatures is what Linux 6.1's virtio_net accepts of an offer.
const linuxFeatures = baseFeatures | FeatureMTU | FeatureMQ

func TestFeaturesAndQueues(t *testing.T) {
	tap := newFakeTap(t, 2)
	d, err := New(Config{Tap: "fake0", Queues: 2, MTU: 9000}, tap)
	if err != nil {
		t.Fatal(err)
	}
	f := d.Features()
	for _, bit := range []uint64{FeatureCSUM, FeatureGuestCSUM, FeatureMAC, FeatureMTU, FeatureMQ, FeatureCtrlVQ,
		FeatureMrgRxbuf, FeatureStatus, FeatureHostTSO4, FeatureHostTSO6, FeatureGuestTSO4, FeatureGuestTSO6,
		virtio.FeatureEventIdx, virtio.FeatureVersion1} {
		if f&bit == 0 {
			t.Errorf("feature %#x not offered", bit)
		}
	}
	if f&(FeatureHostUFO|FeatureGuestUFO|FeatureHostECN|FeatureCtrlRx) != 0 {
		t.Errorf("unsupported features offered: %#x", f)
	}
	if n := len(d.QueueMaxSizes()); n != 5 {
		t.Errorf("%d queues, want 5", n)
	}
	if tap.hdrSize != hdrLen {
		t.Errorf("vnet header size %d", tap.hdrSize)
	}
	single, err := New(Config{Tap: "fake1"}, newFakeTap(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if single.Features()&(FeatureMQ|FeatureMTU) != 0 || len(single.QueueMaxSizes()) != 3 {
		t.Errorf("single queue device: features %#x, %d queues", single.Features(), len(single.QueueMaxSizes()))
	}
	if _, err := New(Config{Tap: "fake2", Queues: 2}, newFakeTap(t, 1)); !errors.Is(err, ErrBackend) {
		t.Errorf("two pairs on a one-queue backend: %v", err)
	}
}

func TestConfigSpace(t *testing.T) {
	mac := MAC{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
	r := newRig(t, Config{Queues: 2, MTU: 1400, MAC: mac}, linuxFeatures)
	b := make([]byte, 16)
	r.dev.ReadConfig(0, b)
	want := []byte{0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 1, 0, 2, 0, 0x78, 0x05, 0, 0, 0, 0}
	if !bytes.Equal(b, want) {
		t.Errorf("config space % x, want % x", b, want)
	}
	one := make([]byte, 1)
	r.dev.ReadConfig(10, one)
	if one[0] != 0x78 {
		t.Errorf("byte 10 = %#x", one[0])
	}
	r.dev.ReadConfig(1<<40, b)
	if !bytes.Equal(b, make([]byte, 16)) {
		t.Error("config beyond the end is not zero")
	}
	r.dev.WriteConfig(0, []byte{0xff, 0xff})
	r.dev.ReadConfig(0, one)
	if one[0] != 0x02 {
		t.Error("MAC is writable")
	}
	if err := r.dev.SetLink(false); err != nil {
		t.Fatal(err)
	}
	r.dev.ReadConfig(6, one)
	if one[0] != 0 || r.rec.Configs.Load() != 1 || r.dev.LinkUp() {
		t.Errorf("link down: status %d, %d config interrupts", one[0], r.rec.Configs.Load())
	}
	r.dev.SetLink(false)
	r.dev.SetLink(true)
	r.dev.ReadConfig(6, one)
	if one[0] != statusLinkUp || r.rec.Configs.Load() != 2 {
		t.Errorf("link up: status %d, %d config interrupts", one[0], r.rec.Configs.Load())
	}
}

func TestTransmit(t *testing.T) {
	r := newRig(t, Config{}, linuxFeatures)
	d := r.tx(0)
	f := frame(1000, 1)
	h := hdrBytes(header{flags: hdrNeedsCSUM, csumStart: 34, csumOffset: 16})
	// Header and frame in separate descriptors, in one, and behind an indirect table.
	d.AddChain(putBytes(t, d, h), putBytes(t, d, f[:100]), putBytes(t, d, f[100:]))
	d.AddChain(putBytes(t, d, concat(h, f)))
	d.Publish(d.WriteIndirect(d.Alloc(64), putBytes(t, d, h), putBytes(t, d, f)))
	r.kick(1)
	for i := range 3 {
		got := r.tap.take(t, 0, 5*time.Second)
		if !bytes.Equal(got, concat(h, f)) {
			t.Fatalf("packet %d: got %d bytes, want header and frame (%d)", i, len(got), hdrLen+len(f))
		}
		if _, n := waitUsed(t, d); n != 0 {
			t.Errorf("used length %d for a transmit buffer", n)
		}
	}
	// A TSO packet goes through with its header.
	tso := hdrBytes(header{flags: hdrNeedsCSUM, gsoType: gsoTCPv4, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16})
	big := frame(60000, 3)
	d.AddChain(putBytes(t, d, tso), putBytes(t, d, big))
	r.kick(1)
	if got := r.tap.take(t, 0, 5*time.Second); !bytes.Equal(got, concat(tso, big)) {
		t.Fatalf("TSO packet: got %d bytes", len(got))
	}
	waitUsed(t, d)
	if s := r.dev.Stats()[0]; s.TxPackets != 4 || s.TxBytes != 3000+60000 || s.TxDropped != 0 {
		t.Errorf("stats %+v", s)
	}
	if r.rec.Interrupts.Load() == 0 {
		t.Error("no used-buffer interrupt")
	}
}

// TestTransmitHostile sends packets a hostile or buggy driver could make:
// each is dropped (returned with length 0), the device keeps working.
func TestTransmitHostile(t *testing.T) {
	r := newRig(t, Config{}, linuxFeatures&^FeatureHostTSO6)
	d := r.tx(0)
	f := frame(200, 5)
	bad := []struct {
		name string
		bufs func() []virtiotest.Buf
	}{
		{"short header", func() []virtiotest.Buf { return []virtiotest.Buf{putBytes(t, d, make([]byte, 11))} }},
		{"header only", func() []virtiotest.Buf { return []virtiotest.Buf{putBytes(t, d, make([]byte, hdrLen))} }},
		{"runt frame", func() []virtiotest.Buf { return []virtiotest.Buf{putBytes(t, d, make([]byte, hdrLen+13))} }},
		{"oversized", func() []virtiotest.Buf {
			return []virtiotest.Buf{putBytes(t, d, make([]byte, hdrLen)), {Addr: 0, Len: maxFrameLen + 1}}
		}},
		{"writable only", func() []virtiotest.Buf { return []virtiotest.Buf{rxBuf(d, 300)} }},
		{"data valid flag", func() []virtiotest.Buf { return hb(t, d, header{flags: hdrDataValid}, f) }},
		{"unknown flag", func() []virtiotest.Buf { return hb(t, d, header{flags: 0x40}, f) }},
		{"checksum past the end", func() []virtiotest.Buf {
			return hb(t, d, header{flags: hdrNeedsCSUM, csumStart: 190, csumOffset: 16}, f)
		}},
		{"TSO6 not negotiated", func() []virtiotest.Buf {
			return hb(t, d, header{flags: hdrNeedsCSUM, gsoType: gsoTCPv6, gsoSize: 1400, hdrLen: 74, csumStart: 54, csumOffset: 16}, f)
		}},
		{"UFO", func() []virtiotest.Buf {
			return hb(t, d, header{flags: hdrNeedsCSUM, gsoType: gsoUDP, gsoSize: 1400, csumStart: 34, csumOffset: 6}, f)
		}},
		{"ECN", func() []virtiotest.Buf {
			return hb(t, d, header{flags: hdrNeedsCSUM, gsoType: gsoTCPv4 | gsoECN, gsoSize: 1400, csumStart: 34, csumOffset: 16}, f)
		}},
		{"GSO without checksum", func() []virtiotest.Buf { return hb(t, d, header{gsoType: gsoTCPv4, gsoSize: 1400}, f) }},
		{"GSO size zero", func() []virtiotest.Buf {
			return hb(t, d, header{flags: hdrNeedsCSUM, gsoType: gsoTCPv4, csumStart: 34, csumOffset: 16}, f)
		}},
		{"GSO header length past the end", func() []virtiotest.Buf {
			return hb(t, d, header{flags: hdrNeedsCSUM, gsoType: gsoTCPv4, gsoSize: 100, hdrLen: 201, csumStart: 34, csumOffset: 16}, f)
		}},
		{"GSO type 7", func() []virtiotest.Buf {
			return hb(t, d, header{flags: hdrNeedsCSUM, gsoType: 7, gsoSize: 100, csumStart: 34, csumOffset: 16}, f)
		}},
	}
	for _, c := range bad {
		head := d.AddChain(c.bufs()...)
		r.kick(1)
		if id, n := waitUsed(t, d); id != uint32(head) || n != 0 {
			t.Errorf("%s: used %d/%d, want %d/0", c.name, id, n, head)
		}
		if got := r.tap.take(t, 0, 0); got != nil {
			t.Errorf("%s: a %d-byte packet reached the TAP", c.name, len(got))
		}
	}
	// A descriptor loop and a buffer outside guest RAM: malformed chains.
	d.SetDesc(d.Desc, 200, d.Alloc(16), 16, virtio.DescFlagNext, 200)
	d.Publish(200)
	d.SetDesc(d.Desc, 201, memSize-8, 64, 0, 0)
	d.Publish(201)
	r.kick(1)
	for range 2 {
		if _, n := waitUsed(t, d); n != 0 {
			t.Errorf("malformed chain used with length %d", n)
		}
	}
	good := hdrBytes(header{})
	d.AddChain(putBytes(t, d, good), putBytes(t, d, f))
	r.kick(1)
	if got := r.tap.take(t, 0, 5*time.Second); !bytes.Equal(got, concat(good, f)) {
		t.Fatal("a good packet after the bad ones did not arrive")
	}
	waitUsed(t, d)
	if s := r.dev.Stats()[0]; s.TxDropped != uint64(len(bad)+2) || s.TxPackets != 1 {
		t.Errorf("stats %+v, want %d drops", s, len(bad)+2)
	}
	if err := r.rec.Failure(); err != nil {
		t.Errorf("device asked for a reset: %v", err)
	}
}

// hb is a header buffer followed by a frame buffer.
func hb(t testing.TB, d *virtiotest.Driver, h header, f []byte) []virtiotest.Buf {
	return []virtiotest.Buf{putBytes(t, d, hdrBytes(h)), putBytes(t, d, f)}
}

func TestReceiveMergeable(t *testing.T) {
	r := newRig(t, Config{}, linuxFeatures)
	d := r.rx(0)
	var bufs []virtiotest.Buf
	for range 8 {
		b := rxBuf(d, 1536)
		bufs = append(bufs, b)
		d.AddChain(b)
	}
	r.kick(0)
	h := header{flags: hdrDataValid}
	small := frame(60, 9)
	big := frame(4000, 7)
	r.tap.inject(t, 0, concat(hdrBytes(h), small))
	r.tap.inject(t, 0, concat(hdrBytes(h), big))

	id, n := waitUsed(t, d)
	got := virtiotest.Bytes(t, r.mem, bufs[0].Addr, int(n))
	if id != 0 || int(n) != hdrLen+len(small) || decodeHeader(got).numBuffers != 1 || !bytes.Equal(got[hdrLen:], small) {
		t.Fatalf("small packet: used %d/%d, % x", id, n, got[:hdrLen])
	}
	if decodeHeader(got).flags != hdrDataValid {
		t.Errorf("DATA_VALID lost: flags %#x", got[0])
	}
	var all []byte
	for i := 1; i <= 3; i++ {
		id, n := waitUsed(t, d)
		if id != uint32(i) {
			t.Fatalf("big packet buffer %d: used id %d", i, id)
		}
		all = append(all, virtiotest.Bytes(t, r.mem, bufs[i].Addr, int(n))...)
	}
	if hd := decodeHeader(all); hd.numBuffers != 3 || !bytes.Equal(all[hdrLen:], big) {
		t.Fatalf("big packet: num_buffers %d, %d bytes", hd.numBuffers, len(all))
	}
	if s := r.dev.Stats()[0]; s.RxPackets != 2 || s.RxBytes != 4060 {
		t.Errorf("stats %+v", s)
	}
}

// TestReceiveBackpressure: packets that find no buffers wait in the TAP
// (the device stops reading it) and arrive in order once the driver adds
// buffers.
func TestReceiveBackpressure(t *testing.T) {
	r := newRig(t, Config{}, linuxFeatures)
	d := r.rx(0)
	for i := range 5 {
		r.tap.inject(t, 0, concat(hdrBytes(header{}), frame(100+i, byte(i))))
	}
	noUsed(t, d)
	for range 5 {
		b := rxBuf(d, 2048)
		d.AddChain(b)
		r.kick(0)
		_, n := waitUsed(t, d)
		got := virtiotest.Bytes(t, r.mem, b.Addr, int(n))
		want := frame(int(n)-hdrLen, byte(int(n)-hdrLen-100))
		if !bytes.Equal(got[hdrLen:], want) {
			t.Fatalf("packet of %d bytes out of order or corrupted", n)
		}
	}
	if s := r.dev.Stats()[0]; s.RxPackets != 5 || s.RxDropped != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestReceiveWithoutMergeable(t *testing.T) {
	r := newRig(t, Config{}, linuxFeatures&^FeatureMrgRxbuf)
	d := r.rx(0)
	small := rxBuf(d, 200)
	d.AddChain(small)
	r.kick(0)
	r.tap.inject(t, 0, concat(hdrBytes(header{}), frame(500, 1))) // too big: dropped
	r.tap.inject(t, 0, concat(hdrBytes(header{}), frame(150, 2)))
	id, n := waitUsed(t, d)
	got := virtiotest.Bytes(t, r.mem, small.Addr, int(n))
	if id != 0 || n != hdrLen+150 || !bytes.Equal(got[hdrLen:], frame(150, 2)) || decodeHeader(got).numBuffers != 1 {
		t.Fatalf("used %d/%d", id, n)
	}
	if s := r.dev.Stats()[0]; s.RxDropped != 1 || s.RxPackets != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestReceiveOffloadChecks: what the kernel hands over is checked against
// what the driver accepts.
func TestReceiveOffloadChecks(t *testing.T) {
	r := newRig(t, Config{}, linuxFeatures&^(FeatureGuestCSUM|FeatureGuestTSO4|FeatureGuestTSO6))
	if o, _ := r.tap.state(); o != 0 {
		t.Errorf("TAP offloads %#x for a driver without GUEST_CSUM", o)
	}
	d := r.rx(0)
	b := rxBuf(d, 2048)
	d.AddChain(b)
	r.kick(0)
	r.tap.inject(t, 0, concat(hdrBytes(header{flags: hdrNeedsCSUM, csumStart: 34, csumOffset: 16}), frame(100, 1)))
	r.tap.inject(t, 0, concat(hdrBytes(header{flags: hdrNeedsCSUM, gsoType: gsoTCPv4, gsoSize: 1000, csumStart: 34, csumOffset: 16}), frame(3000, 1)))
	r.tap.inject(t, 0, concat(hdrBytes(header{flags: hdrDataValid}), frame(100, 2)))
	_, n := waitUsed(t, d)
	got := virtiotest.Bytes(t, r.mem, b.Addr, int(n))
	if n != hdrLen+100 || got[0] != 0 || got[hdrLen+20] != frame(100, 2)[20] {
		t.Fatalf("used %d bytes, flags %#x", n, got[0])
	}
	if s := r.dev.Stats()[0]; s.RxDropped != 2 {
		t.Errorf("stats %+v, want 2 drops", s)
	}

	r2 := newRig(t, Config{}, linuxFeatures)
	if o, _ := r2.tap.state(); o != hostos.TapOffloadCSUM|hostos.TapOffloadTSO4|hostos.TapOffloadTSO6 {
		t.Errorf("TAP offloads %#x", o)
	}
	d2 := r2.rx(0)
	for range 4 {
		d2.AddChain(rxBuf(d2, 1536))
	}
	r2.kick(0)
	tso := header{flags: hdrNeedsCSUM, gsoType: gsoTCPv4, gsoSize: 1000, hdrLen: 54, csumStart: 34, csumOffset: 16}
	r2.tap.inject(t, 0, concat(hdrBytes(tso), frame(3000, 1)))
	_, n = waitUsed(t, d2)
	if n != 1536 {
		t.Errorf("first buffer of a TSO packet: %d bytes", n)
	}
}

func TestControlQueue(t *testing.T) {
	r := newRig(t, Config{Queues: 3}, linuxFeatures)
	if _, en := r.tap.state(); !en[0] || en[1] || en[2] {
		t.Errorf("TAP queues enabled %v before VQ_PAIRS_SET, want only the first", en)
	}
	for _, c := range []struct {
		name       string
		class, cmd byte
		data       []byte
		want       int
	}{
		{"pairs 3", ctrlClassMQ, ctrlMQVQPairsSet, le16(3), ctrlOK},
		{"pairs 0", ctrlClassMQ, ctrlMQVQPairsSet, le16(0), ctrlErr},
		{"pairs 4", ctrlClassMQ, ctrlMQVQPairsSet, le16(4), ctrlErr},
		{"pairs short", ctrlClassMQ, ctrlMQVQPairsSet, []byte{2}, ctrlErr},
		{"pairs long", ctrlClassMQ, ctrlMQVQPairsSet, []byte{2, 0, 0}, ctrlErr},
		{"pairs huge data", ctrlClassMQ, ctrlMQVQPairsSet, make([]byte, 4096), ctrlErr},
		{"RSS", ctrlClassMQ, 1, make([]byte, 8), ctrlErr},
		{"rx mode", 0, 0, []byte{1}, ctrlErr},
		{"offloads csum only", ctrlClassGuestOffloads, ctrlGuestOffloadsSet, le64(FeatureGuestCSUM), ctrlOK},
		{"offloads UFO", ctrlClassGuestOffloads, ctrlGuestOffloadsSet, le64(FeatureGuestUFO), ctrlErr},
		{"offloads short", ctrlClassGuestOffloads, ctrlGuestOffloadsSet, le16(0), ctrlErr},
		{"pairs 2", ctrlClassMQ, ctrlMQVQPairsSet, le16(2), ctrlOK},
	} {
		if got := r.ctrlCmd(t, c.class, c.cmd, c.data); got != c.want {
			t.Errorf("%s: ack %d, want %d", c.name, got, c.want)
		}
	}
	if o, en := r.tap.state(); o != hostos.TapOffloadCSUM || !en[0] || !en[1] || en[2] {
		t.Errorf("TAP offloads %#x queues %v, want CSUM and two queues", o, en)
	}
	if n := r.dev.activePairs.Load(); n != 2 {
		t.Errorf("active pairs %d", n)
	}
	// A command with no room for the acknowledgement, one with no header,
	// and a malformed chain are returned without an answer.
	d := r.ctrl()
	d.AddChain(putBytes(t, d, []byte{ctrlClassMQ, ctrlMQVQPairsSet}), putBytes(t, d, le16(1)))
	d.AddChain(rxBuf(d, 1))
	d.SetDesc(d.Desc, 100, memSize+4096, 8, 0, 0)
	d.Publish(100)
	r.kick(len(r.drv) - 1)
	for i, want := range []uint32{0, 1, 0} {
		if _, n := waitUsed(t, d); n != want {
			t.Errorf("request %d: used length %d, want %d", i, n, want)
		}
	}
	if err := r.rec.Failure(); err != nil {
		t.Errorf("device asked for a reset: %v", err)
	}
}

// TestMultiqueueTraffic: each active pair moves packets over its own TAP
// queue; a pair the driver has not enabled transmits through queue 0 and
// receives nothing.
func TestMultiqueueTraffic(t *testing.T) {
	r := newRig(t, Config{Queues: 2}, linuxFeatures)
	h := hdrBytes(header{})
	f := frame(300, 4)
	d1 := r.tx(1)
	d1.AddChain(putBytes(t, d1, h), putBytes(t, d1, f))
	r.kick(3)
	if got := r.tap.take(t, 0, 5*time.Second); !bytes.Equal(got, concat(h, f)) {
		t.Fatal("transmit on a disabled pair did not go out through queue 0")
	}
	if ack := r.ctrlCmd(t, ctrlClassMQ, ctrlMQVQPairsSet, le16(2)); ack != ctrlOK {
		t.Fatalf("VQ_PAIRS_SET: ack %d", ack)
	}
	d1.AddChain(putBytes(t, d1, h), putBytes(t, d1, f))
	r.kick(3)
	if got := r.tap.take(t, 1, 5*time.Second); !bytes.Equal(got, concat(h, f)) {
		t.Fatal("transmit on pair 1 did not reach TAP queue 1")
	}
	waitUsed(t, d1)
	waitUsed(t, d1)
	for q := range 2 {
		rx := r.rx(q)
		rx.AddChain(rxBuf(rx, 2048))
		r.kick(2 * q)
		r.tap.inject(t, q, concat(h, frame(100+q, 0)))
		if _, n := waitUsed(t, rx); n != uint32(hdrLen+100+q) {
			t.Errorf("pair %d received %d bytes", q, n)
		}
	}
	st := r.dev.Stats()
	if st[0].TxPackets != 0 || st[1].TxPackets != 2 || st[0].RxPackets != 1 || st[1].RxPackets != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestActivateChecks(t *testing.T) {
	r := buildRig(t, Config{Queues: 2}, linuxFeatures)
	ctx := r.ctx()
	unready, _ := virtio.NewQueue(QueueSize)
	ctx.Queues = append([]*virtio.Queue{}, r.queues...)
	ctx.Queues[3] = unready
	if err := r.dev.Activate(ctx); !errors.Is(err, virtio.ErrMissingQueue) {
		t.Errorf("Activate with transmitq2 missing = %v", err)
	}
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	if err := r.dev.Activate(r.ctx()); !errors.Is(err, virtio.ErrAlreadyActive) {
		t.Errorf("second Activate = %v", err)
	}
	r.dev.Reset()
	r.dev.Reset()
	// Without MQ only the first pair (and the control queue at index 2) is needed.
	ctx = r.ctx()
	ctx.Features &^= FeatureMQ
	ctx.Queues = append([]*virtio.Queue{}, r.queues...)
	ctx.Queues[3] = unready
	if err := r.dev.Activate(ctx); err != nil {
		t.Errorf("Activate without MQ: %v", err)
	}
	if err := r.dev.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.dev.Activate(r.ctx()); !errors.Is(err, ErrClosed) {
		t.Errorf("Activate after Close = %v", err)
	}
}

// TestBrokenQueueNeedsReset: an impossible available index stops the
// device through NeedsReset; the rest of the VMM carries on.
func TestBrokenQueueNeedsReset(t *testing.T) {
	r := newRig(t, Config{}, linuxFeatures)
	r.tx(0).SetAvailIdx(1000)
	r.kick(1)
	waitFor(t, "a reset request", func() bool { return r.rec.Failure() != nil })
	if err := r.rec.Failure(); !errors.Is(err, virtio.ErrAvailIndex) {
		t.Errorf("failure %v", err)
	}
	r.dev.Reset()
}

func TestStateRestore(t *testing.T) {
	r := newRig(t, Config{Queues: 2, MTU: 1500}, linuxFeatures)
	if ack := r.ctrlCmd(t, ctrlClassMQ, ctrlMQVQPairsSet, le16(2)); ack != ctrlOK {
		t.Fatal("VQ_PAIRS_SET refused")
	}
	if ack := r.ctrlCmd(t, ctrlClassGuestOffloads, ctrlGuestOffloadsSet, le64(FeatureGuestCSUM)); ack != ctrlOK {
		t.Fatal("GUEST_OFFLOADS_SET refused")
	}
	d := r.tx(0)
	d.AddChain(putBytes(t, d, hdrBytes(header{})), putBytes(t, d, frame(64, 1)))
	r.kick(1)
	waitUsed(t, d)
	r.dev.SetLink(false)
	s := r.dev.State()
	if s.ActivePairs != 2 || !s.OffloadsSet || s.Offloads != FeatureGuestCSUM || s.LinkUp || len(s.Queues) != 5 ||
		s.Queues[1].NextUsed != 1 || s.Stats[0].TxPackets != 1 || s.Features != r.features {
		t.Fatalf("state %+v", s)
	}
	// The device still works after the capture.
	d.AddChain(putBytes(t, d, hdrBytes(header{})), putBytes(t, d, frame(64, 1)))
	r.kick(1)
	waitUsed(t, d)

	// A quiesce (Reset, then Activate on the same queues) keeps what the
	// driver set.
	r.dev.Reset()
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	if n, o := r.dev.activePairs.Load(), r.dev.offloads.Load(); n != 2 || o != FeatureGuestCSUM {
		t.Errorf("after a quiesce: %d pairs, offloads %#x", n, o)
	}
	saved, err := r.dev.SaveState()
	if err != nil {
		t.Fatal(err)
	}

	// A new device on a copy of guest memory and the saved queues.
	r2 := buildRig(t, Config{Queues: 2, MTU: 1500}, linuxFeatures)
	ram := make([]byte, 6*queueMem)
	r.mem.ReadAt(ram, queueMem)
	r2.mem.WriteAt(ram, queueMem)
	bad := s
	bad.Config.MAC = MAC{2, 9, 9, 9, 9, 9}
	if err := r2.dev.Restore(bad); !errors.Is(err, ErrState) {
		t.Errorf("Restore with another MAC = %v", err)
	}
	if err := r2.dev.RestoreState([]byte("{")); !errors.Is(err, ErrState) {
		t.Errorf("RestoreState of bad JSON = %v", err)
	}
	if err := r2.dev.RestoreState(saved); err != nil {
		t.Fatal(err)
	}
	if r2.dev.LinkUp() || r2.dev.Stats()[0].TxPackets != 2 {
		t.Error("link status or counters not restored")
	}
	for i, qs := range s.Queues {
		qs.NextUsed = r.queues[i].State().NextUsed
		qs.LastAvail = r.queues[i].State().LastAvail
		if err := r2.queues[i].Restore(r2.mem, qs); err != nil {
			t.Fatal(err)
		}
	}
	if err := r2.dev.Activate(r2.ctx()); err != nil {
		t.Fatal(err)
	}
	if n := r2.dev.activePairs.Load(); n != 2 {
		t.Errorf("active pairs after restore %d", n)
	}
	if err := r2.dev.Restore(s); !errors.Is(err, ErrState) {
		t.Errorf("Restore while active = %v", err)
	}

	// A driver reset (fresh queues) starts over with one pair. The driver
	// lays out new, empty rings: the old control ring still holds the
	// commands that enabled two pairs.
	r.dev.Reset()
	for i, q := range r.queues {
		q.Reset()
		base := uint64(i+1) * queueMem
		if err := r.mem.WriteAt(make([]byte, queueMem), base); err != nil {
			t.Fatal(err)
		}
		r.drv[i] = virtiotest.NewDriver(t, r.mem, qsize, base, base+queueMem)
		if err := q.Configure(r.mem, r.drv[i].Config(), r.features); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	if n, o := r.dev.activePairs.Load(), r.dev.offloads.Load(); n != 1 || o != r.features&guestOffloads {
		t.Errorf("after a driver reset: %d pairs, offloads %#x", n, o)
	}
}

// TestTapBackendClosedByDevice: Close closes the backend once.
func TestTapBackendClosedByDevice(t *testing.T) {
	tap := newFakeTap(t, 1)
	d, err := New(Config{Tap: "x"}, tap)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d.Close()
	if !tap.closed {
		t.Error("backend not closed")
	}
}
