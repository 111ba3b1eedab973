package fcapi

import (
	"strings"
	"testing"

	vnet "github.com/vireo-vmm/vireo/internal/devices/virtio/net"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

func TestAttachNets(t *testing.T) {
	mac := "AA:FC:00:00:00:01"
	off := &rateLimiter{Bandwidth: &tokenBucket{Size: 0, RefillTime: 100}, Ops: &tokenBucket{Size: 10}}
	r := &resources{nets: []networkInterface{
		{IfaceID: "eth0", HostDevName: "tap0", GuestMAC: &mac, RxRateLimiter: off},
		{IfaceID: "eth1", HostDevName: "tap1"},
	}}
	var cfg vmm.Config
	if err := attachNets(&cfg, r); err != nil {
		t.Fatal(err)
	}
	want := []vnet.Config{
		{ID: "eth0", Tap: "tap0", MAC: vnet.MAC{0xaa, 0xfc, 0, 0, 0, 1}, Queues: 1},
		{ID: "eth1", Tap: "tap1", MAC: vnet.DefaultMAC("tap1"), Queues: 1},
	}
	if len(cfg.Nets) != 2 || cfg.Nets[0].Config != want[0] || cfg.Nets[1].Config != want[1] {
		t.Fatalf("nets %+v, want %+v", cfg.Nets, want)
	}

	multicast := "01:00:5e:00:00:01"
	for _, c := range []struct {
		n    networkInterface
		want string
	}{
		{networkInterface{IfaceID: "eth0", HostDevName: "tap0", TxRateLimiter: &rateLimiter{Bandwidth: &tokenBucket{Size: 1 << 20, RefillTime: 1000}}}, "rate limiters are not supported"},
		{networkInterface{IfaceID: "eth0", HostDevName: "tap0", GuestMAC: &multicast}, "multicast"},
	} {
		var cfg vmm.Config
		err := attachNets(&cfg, &resources{nets: []networkInterface{c.n}})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `"eth0"`) {
			t.Errorf("attachNets(%+v) = %v, want an error mentioning %q", c.n, err, c.want)
		}
	}
}
