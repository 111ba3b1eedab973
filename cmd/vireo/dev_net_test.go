package main

import (
	"io"
	"strings"
	"testing"

	vnet "github.com/vireo-vmm/vireo/internal/devices/virtio/net"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

func TestNetFlag(t *testing.T) {
	f, err := parseRunFlags([]string{"--kernel", "k", "--net", "tap=vm0,mac=02:00:00:00:00:01,queues=2,mtu=9000", "--net", "tap=vm1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	nets := f.devices.Nets
	if len(nets) != 2 || nets[0].Tap != "vm0" || nets[0].Queues != 2 || nets[0].MTU != 9000 ||
		nets[0].MAC != (vnet.MAC{2, 0, 0, 0, 0, 1}) || nets[1].Tap != "vm1" || nets[1].MAC != vnet.DefaultMAC("vm1") {
		t.Fatalf("nets %+v", nets)
	}
	var d vmm.Devices
	nf := &netFlag{d: &d}
	if err := nf.Set("tap=a,mac=02:00:00:00:00:01"); err != nil {
		t.Fatal(err)
	}
	if s := nf.String(); s != "tap=a,mac=02:00:00:00:00:01" {
		t.Errorf("String() = %q", s)
	}
	for in, want := range map[string]string{
		"tap=a":                       "TAP a is used twice",
		"tap=b,mac=02:00:00:00:00:01": "MAC 02:00:00:00:00:01 is used twice",
		"mac=02:00:00:00:00:02":       "no tap=",
		"tap=b,queues=x":              "queues=x",
		"tap=b,mtu=10":                "mtu=10",
		"tap=b,color=red":             `unknown option "color"`,
		"tap=b,mac=03:00:00:00:00:01": "multicast",
		"tap=b,mtu":                   `expected key=value, got "mtu"`,
	} {
		err := nf.Set(in)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Set(%q) = %v, want an error mentioning %q", in, err, want)
		}
	}
	if len(d.Nets) != 1 {
		t.Errorf("failed flags added devices: %+v", d.Nets)
	}
}
