package vmm

import "errors"

// ErrNoBalloon is returned by balloon requests while the machine has no
// balloon device.
var ErrNoBalloon = errors.New("no balloon device")

// VCPUInfo describes one vCPU for management APIs.
type VCPUInfo struct {
	Index    int // vCPU index (APIC ID in the default topology)
	ThreadID int // host thread id of the vCPU's OS thread
}

// BlockInfo describes one block device for management APIs.
type BlockInfo struct {
	ID       string // device id, e.g. "disk0"
	Path     string // host backing file
	Format   string // image format, e.g. "raw"
	ReadOnly bool
	Size     uint64 // virtual size in bytes
}

// VCPUs describes the current machine's vCPUs; it is empty before the
// machine is built.
func (c *Controller) VCPUs() []VCPUInfo {
	m := c.Machine()
	if m == nil {
		return nil
	}
	out := make([]VCPUInfo, 0, len(m.vcpus))
	for _, v := range m.vcpus {
		out = append(out, VCPUInfo{Index: v.ID(), ThreadID: v.ThreadID()})
	}
	return out
}

// MemoryBytes is the guest's boot RAM size.
func (c *Controller) MemoryBytes() uint64 { return c.cfg.MemoryBytes }

// BlockDevices describes the machine's block devices.
func (c *Controller) BlockDevices() []BlockInfo {
	m := c.Machine()
	if m == nil {
		return nil
	}
	return m.blockDevices()
}

// blockDevices is the hook the block device wiring fills: it returns one
// entry per attached disk. The machine has no disks yet.
func (m *Machine) blockDevices() []BlockInfo { return nil }

// BalloonBytes is the guest memory size the balloon device reports as
// actually available to the guest; ErrNoBalloon until a balloon exists.
func (c *Controller) BalloonBytes() (uint64, error) { return 0, ErrNoBalloon }

// SetBalloonTarget asks the balloon device to give the guest target bytes
// of memory; ErrNoBalloon until a balloon exists.
func (c *Controller) SetBalloonTarget(target uint64) error { return ErrNoBalloon }
