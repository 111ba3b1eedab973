package vmm

import (
	"fmt"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/balloon"
	"github.com/vireo-vmm/vireo/internal/devices/virtio/blk"
	vconsole "github.com/vireo-vmm/vireo/internal/devices/virtio/console"
	vnet "github.com/vireo-vmm/vireo/internal/devices/virtio/net"
	"github.com/vireo-vmm/vireo/internal/devices/virtio/rng"
	"github.com/vireo-vmm/vireo/internal/devices/virtio/vsock"
	"github.com/vireo-vmm/vireo/internal/kvm"
	"github.com/vireo-vmm/vireo/internal/metrics"
	"github.com/vireo-vmm/vireo/internal/vcpu"
)

// meters are a machine's devices that keep counters. They are collected
// once the devices exist and never change afterwards, so any goroutine
// may read them while the controller closes the machine.
type meters struct {
	disks    []*blk.Device
	nets     []*vnet.Device
	consoles []*vconsole.Device
	vsock    *vsock.Device
	rng      *rng.Device
	balloon  *balloon.Device
}

// collectMeters finds the counting devices among the virtio transports.
func (m *Machine) collectMeters() meters {
	var ms meters
	for _, t := range m.virtio.transports {
		switch d := t.Device().(type) {
		case *blk.Device:
			ms.disks = append(ms.disks, d)
		case *vnet.Device:
			ms.nets = append(ms.nets, d)
		case *vconsole.Device:
			ms.consoles = append(ms.consoles, d)
		case *vsock.Device:
			ms.vsock = d
		case *rng.Device:
			ms.rng = d
		case *balloon.Device:
			ms.balloon = d
		}
	}
	return ms
}

// metrics reads every counter of the machine: its vCPUs' exits and its
// devices'.
func (m *Machine) metrics() metrics.Snapshot {
	var s metrics.Snapshot
	for _, v := range m.vcpus {
		s.VCPUs = append(s.VCPUs, metrics.VCPU{Index: v.ID(), Exits: v.Stats().Exits()})
	}
	ms := &m.virtio.meters
	for _, d := range ms.disks {
		s.Disks = append(s.Disks, d.Metrics())
	}
	for _, d := range ms.nets {
		s.Nets = append(s.Nets, d.Metrics())
	}
	for _, d := range ms.consoles {
		s.Consoles = append(s.Consoles, d.Metrics())
	}
	if ms.vsock != nil {
		v := ms.vsock.Metrics()
		s.Vsock = &v
	}
	if ms.rng != nil {
		r := ms.rng.Metrics()
		s.RNG = &r
	}
	if ms.balloon != nil {
		b := ms.balloon.Metrics()
		s.Balloon = &b
	}
	return s
}

// Metrics returns the current machine's counters: vCPU exits and every
// virtio device's requests, bytes and errors. It never blocks on the
// controller; before the machine is built the snapshot is empty. Disks
// keep their counters across guest resets; the other devices and the
// vCPUs are rebuilt with the machine and count again from zero.
func (c *Controller) Metrics() metrics.Snapshot {
	m := c.Machine()
	if m == nil {
		return metrics.Snapshot{}
	}
	return m.metrics()
}

// KVMStatsSet is KVM's statistics of the VM (VCPU -1) or of one vCPU.
type KVMStatsSet struct {
	VCPU  int
	Stats []kvm.Stat
}

// KVMStats reads KVM's statistics of the current machine: the VM's own
// (vcpus false) or each vCPU's. Before the machine exists there are
// none; a host without binary statistics gives vcpu.ErrNoStats.
func (c *Controller) KVMStats(vcpus bool) ([]KVMStatsSet, error) {
	m := c.Machine()
	if m == nil {
		return nil, nil
	}
	if !vcpus {
		if m.kstats == nil {
			return nil, vcpu.ErrNoStats
		}
		st, err := m.kstats.ReadAll()
		if err != nil {
			return nil, err
		}
		return []KVMStatsSet{{VCPU: -1, Stats: st}}, nil
	}
	out := make([]KVMStatsSet, 0, len(m.vcpus))
	for _, v := range m.vcpus {
		st, err := v.KVMStats()
		if err != nil {
			return nil, fmt.Errorf("vCPU %d: %w", v.ID(), err)
		}
		out = append(out, KVMStatsSet{VCPU: v.ID(), Stats: st})
	}
	return out, nil
}
