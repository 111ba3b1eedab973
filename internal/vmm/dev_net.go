package vmm

import (
	"fmt"
	"slices"

	vnet "github.com/vireo-vmm/vireo/internal/devices/virtio/net"
	"github.com/vireo-vmm/vireo/internal/hostos"
)

// NetConfig is one virtio-net device over a host TAP (see vnet.Config:
// tap name, MAC, queue pairs, MTU). Vireo creates a TAP that does not
// exist and removes it when the VM ends; configuring its host side
// (addresses, link up, bridge) is the user's business.
type NetConfig struct {
	vnet.Config

	tap *hostos.Tap // opened by the controller for the VM's lifetime
}

// openNets opens every network device's TAP. The TAPs belong to the
// controller, not to a machine, so a TAP Vireo created keeps its host-side
// configuration across guest resets. The returned function closes them
// (removing those Vireo created); call it after the last machine is
// closed.
func (c *Controller) openNets() (func(), error) {
	if len(c.cfg.Nets) == 0 {
		return func() {}, nil
	}
	nets := slices.Clone(c.cfg.Nets) // the caller's slice is not ours to fill in
	closeAll := func() {
		for _, n := range nets {
			if n.tap != nil {
				n.tap.Close()
			}
		}
	}
	seen := map[string]bool{}
	for i := range nets {
		cfg, err := nets[i].Config.Normalized()
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("network interface %d: %w", i, err)
		}
		if seen[cfg.Tap] {
			closeAll()
			return nil, fmt.Errorf("%w: TAP %s given to two network interfaces", ErrConfig, cfg.Tap)
		}
		seen[cfg.Tap] = true
		tap, err := hostos.OpenTap(cfg.Tap, cfg.Queues)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("network interface %s: %w", cfg.ID, err)
		}
		if tap.Created() && c.cfg.Log != nil {
			c.cfg.Log.Info("created TAP interface; configure its host side (ip addr, ip link set up)", "tap", tap.Name())
		}
		nets[i].Config, nets[i].tap = cfg, tap
	}
	c.cfg.Nets = nets
	return closeAll, nil
}

// sharedTap is a controller-owned TAP lent to one machine's device: the
// device does not close it.
type sharedTap struct{ *hostos.Tap }

func (sharedTap) Close() error { return nil }

// setupNet adds a virtio-net device per configured interface, over the
// TAPs the controller opened.
func (m *Machine) setupNet() error {
	for _, n := range m.cfg.Nets {
		if n.tap == nil {
			return fmt.Errorf("virtio-net %s: TAP %s is not open", n.ID, n.Tap)
		}
		dev, err := vnet.New(n.Config, sharedTap{n.tap})
		if err != nil {
			return fmt.Errorf("virtio-net %s: %w", n.ID, err)
		}
		if err := m.addVirtioMMIO(dev); err != nil {
			return err
		}
	}
	return nil
}
