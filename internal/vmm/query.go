package vmm

import "errors"

// ErrNoBalloon is returned by balloon requests while the machine has no
// balloon device (or is not running).
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
	Cache    string // cache mode: "writeback", "none" or "unsafe"
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

// Machine.blockDevices, one entry per disk, is in dev_block.go.

// The balloon's queries and controls (BalloonBytes, SetBalloonTarget, ...)
// are in balloon.go.
