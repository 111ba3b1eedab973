package net

import (
	"errors"
	"testing"
)

func TestParseConfig(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Config
	}{
		{"tap=tap0", Config{ID: "tap0", Tap: "tap0", MAC: DefaultMAC("tap0"), Queues: 1}},
		{"tap=vm1,mac=02:aa:bb:cc:dd:ee,queues=2,mtu=9000", Config{ID: "vm1", Tap: "vm1", MAC: MAC{2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}, Queues: 2, MTU: 9000}},
		{"mac=02-00-00-00-00-01,tap=t,id=eth0", Config{ID: "eth0", Tap: "t", MAC: MAC{2, 0, 0, 0, 0, 1}, Queues: 1}},
	} {
		got, err := ParseConfig(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseConfig(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{
		"", "tap", "queues=2", "tap=", "tap=a-very-long-interface", "tap=a/b", "tap=x,tap=y",
		"tap=x,mac=01:00:00:00:00:01", "tap=x,mac=00:00:00:00:00:00", "tap=x,mac=02:00:00:00:00",
		"tap=x,mac=zz:00:00:00:00:01", "tap=x,mac=2:0:0:0:0:1", "tap=x,queues=0", "tap=x,queues=17",
		"tap=x,queues=two", "tap=x,mtu=67", "tap=x,mtu=65536", "tap=x,speed=10",
	} {
		if _, err := ParseConfig(in); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseConfig(%q) = %v, want ErrConfig", in, err)
		}
	}
}

func TestDefaultMAC(t *testing.T) {
	a, b := DefaultMAC("tap0"), DefaultMAC("tap1")
	if a == b || a != DefaultMAC("tap0") {
		t.Errorf("DefaultMAC not stable per name: %s %s", a, b)
	}
	if a[0] != 0x02 {
		t.Errorf("%s is not a locally administered unicast address", a)
	}
	if s := (MAC{0x02, 0xab, 0, 1, 2, 0xff}).String(); s != "02:ab:00:01:02:ff" {
		t.Errorf("String = %s", s)
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := header{flags: 1, gsoType: 4, hdrLen: 0x1234, gsoSize: 1448, csumStart: 54, csumOffset: 16, numBuffers: 3}
	b := hdrBytes(h)
	want := []byte{1, 4, 0x34, 0x12, 0xa8, 0x05, 54, 0, 16, 0, 3, 0}
	if string(b) != string(want) || decodeHeader(b) != h {
		t.Errorf("encoded % x, want % x", b, want)
	}
}

func TestFixRx(t *testing.T) {
	all := uint64(guestOffloads)
	for _, c := range []struct {
		name     string
		h        header
		n        int
		features uint64
		ok       bool
		flags    uint8
	}{
		{"plain", header{}, 60, 0, true, 0},
		{"data valid kept", header{flags: hdrDataValid}, 60, FeatureGuestCSUM, true, hdrDataValid},
		{"data valid cleared", header{flags: hdrDataValid}, 60, 0, true, 0},
		{"rsc cleared", header{flags: hdrRSCInfo | hdrDataValid}, 60, all, true, hdrDataValid},
		{"partial csum refused", header{flags: hdrNeedsCSUM, csumStart: 34, csumOffset: 6}, 60, 0, false, 0},
		{"partial csum", header{flags: hdrNeedsCSUM, csumStart: 34, csumOffset: 6}, 60, FeatureGuestCSUM, true, hdrNeedsCSUM},
		{"csum past the end", header{flags: hdrNeedsCSUM, csumStart: 50, csumOffset: 16}, 60, all, false, 0},
		{"tso4", header{flags: hdrNeedsCSUM, gsoType: gsoTCPv4, csumStart: 34, csumOffset: 16}, 3000, all, true, hdrNeedsCSUM},
		{"tso4 refused", header{flags: hdrNeedsCSUM, gsoType: gsoTCPv4, csumStart: 34, csumOffset: 16}, 3000, FeatureGuestCSUM | FeatureGuestTSO6, false, 0},
		{"tso6 ecn refused", header{flags: hdrNeedsCSUM, gsoType: gsoTCPv6 | gsoECN}, 3000, FeatureGuestCSUM | FeatureGuestTSO6, false, 0},
		{"udp l4 refused", header{gsoType: gsoUDPL4}, 3000, all, false, 0},
		{"runt", header{}, 13, all, false, 0},
		{"giant", header{}, maxFrameLen + 1, all, false, 0},
	} {
		h := c.h
		err := h.fixRx(c.n, c.features)
		if (err == nil) != c.ok || (c.ok && h.flags != c.flags) {
			t.Errorf("%s: err %v, flags %#x; want ok=%v flags %#x", c.name, err, h.flags, c.ok, c.flags)
		}
	}
}
