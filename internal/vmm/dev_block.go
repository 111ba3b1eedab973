package vmm

import (
	"fmt"
	"slices"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/blk"
)

// DiskConfig is one virtio-blk disk (see blk.Config: path, read-only, id,
// serial, cache mode, queues, format). The guest sees the disks in order
// as vda, vdb, ...
type DiskConfig struct {
	blk.Config

	dev *blk.Device // opened by the controller for the VM's lifetime
}

// normalizeDisks gives each disk an id (disk0, disk1, ... by position)
// and checks that ids are unique.
func normalizeDisks(disks []DiskConfig) error {
	seen := map[string]bool{}
	for i := range disks {
		if disks[i].ID == "" {
			disks[i].ID = fmt.Sprintf("disk%d", i)
		}
		if seen[disks[i].ID] {
			return fmt.Errorf("%w: disk id %q is used twice", ErrConfig, disks[i].ID)
		}
		seen[disks[i].ID] = true
	}
	return nil
}

// openDisks opens every disk image. The devices belong to the controller,
// not to a machine: a guest reset rebuilds the machine around the same
// open files. The returned function closes them; call it after the last
// machine is closed.
func (c *Controller) openDisks() (func(), error) {
	if len(c.cfg.Disks) == 0 {
		return func() {}, nil
	}
	disks := slices.Clone(c.cfg.Disks) // the caller's slice is not ours to fill in
	closeAll := func() {
		for _, d := range disks {
			if d.dev != nil {
				d.dev.Close()
			}
		}
	}
	if err := normalizeDisks(disks); err != nil {
		return nil, err
	}
	for i := range disks {
		dev, err := blk.Open(disks[i].Config, c.cfg.Log)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("disk %s: %w", disks[i].ID, err)
		}
		disks[i].dev = dev
	}
	c.cfg.Disks = disks
	return closeAll, nil
}

// setupBlock adds a virtio-mmio device for each disk, in order. A machine
// built without the controller (tests) opens its disks itself; their
// files are then closed only when the garbage collector finds them.
func (m *Machine) setupBlock() error {
	if slices.ContainsFunc(m.cfg.Disks, func(d DiskConfig) bool { return d.dev == nil }) {
		disks := slices.Clone(m.cfg.Disks)
		if err := normalizeDisks(disks); err != nil {
			return err
		}
		for i := range disks {
			dev, err := blk.Open(disks[i].Config, m.log)
			if err != nil {
				return fmt.Errorf("disk %s: %w", disks[i].ID, err)
			}
			disks[i].dev = dev
		}
		m.cfg.Disks = disks
	}
	for _, d := range m.cfg.Disks {
		if err := m.addVirtioMMIO(d.dev); err != nil {
			return fmt.Errorf("disk %s: %w", d.ID, err)
		}
	}
	return nil
}

// blockDevices describes the machine's disks for query-block.
func (m *Machine) blockDevices() []BlockInfo {
	out := make([]BlockInfo, 0, len(m.cfg.Disks))
	for _, d := range m.cfg.Disks {
		if d.dev == nil {
			continue
		}
		i := d.dev.Info()
		out = append(out, BlockInfo{
			ID: i.ID, Path: i.Path, Format: string(i.Format), ReadOnly: i.ReadOnly,
			Size: i.Size, Cache: string(i.Cache),
		})
	}
	return out
}
