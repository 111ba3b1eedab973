package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	vnet "github.com/vireo-vmm/vireo/internal/devices/virtio/net"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// netFlags registers --net (repeatable).
func netFlags(fs *flag.FlagSet, d *vmm.Devices) {
	fs.Var(&netFlag{d: d}, "net", "add a virtio-net device over a host TAP: tap=NAME[,mac=MAC][,queues=N][,mtu=N] "+
		"(the TAP is created when missing and removed at exit; configure its host side yourself); repeatable")
}

// netFlag is --net: each use adds one network device.
type netFlag struct{ d *vmm.Devices }

func (f *netFlag) String() string {
	if f.d == nil {
		return ""
	}
	var specs []string
	for _, n := range f.d.Nets {
		s := "tap=" + n.Tap
		if !n.MAC.IsZero() {
			s += ",mac=" + n.MAC.String()
		}
		if n.Queues > 1 {
			s += ",queues=" + strconv.Itoa(n.Queues)
		}
		if n.MTU != 0 {
			s += ",mtu=" + strconv.Itoa(n.MTU)
		}
		specs = append(specs, s)
	}
	return strings.Join(specs, " ")
}

func (f *netFlag) Set(s string) error {
	cfg, err := vnet.ParseConfig(s)
	if err != nil {
		return err
	}
	for _, o := range f.d.Nets {
		if o.Tap == cfg.Tap {
			return fmt.Errorf("--net: TAP %s is used twice", cfg.Tap)
		}
		if o.MAC == cfg.MAC {
			return fmt.Errorf("--net: MAC %s is used twice", cfg.MAC)
		}
	}
	f.d.Nets = append(f.d.Nets, vmm.NetConfig{Config: cfg})
	return nil
}
