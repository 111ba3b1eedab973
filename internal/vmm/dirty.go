package vmm

import (
	"errors"
	"fmt"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/kvm"
)

// Dirty page tracking, for live migration and diff snapshots.
//
// Guest RAM is written two ways, and both are recorded:
//
//   - by the guest: KVM_MEM_LOG_DIRTY_PAGES on every RAM slot makes KVM
//     log the pages the vCPUs (and KVM itself: kvmclock, steal time)
//     write; KVM_GET_DIRTY_LOG hands the log over and clears it.
//   - by the VMM's devices: virtio buffers and used rings are written
//     through the host mapping, which KVM never sees. guestmem records
//     them in a bitmap of its own while tracking is on: every write
//     through its accessors, the used-ring index stores, and, when a
//     device returns a chain to the driver (Queue.AddUsed), the chain's
//     whole device-writable part (which covers buffers a device filled
//     in place, through DescriptorChain.WritableSlices). Bits are set
//     after the bytes are written, so a collection never clears a bit
//     whose write is still to come.
//
// A caller that needs a consistent final set (the last pass of a
// migration) pauses the vCPUs and quiesces the devices, which completes
// their in-flight requests, before the last CollectDirty. Pages a balloon
// gives back to the host (madvise) are not recorded: the guest has given
// them up and must not expect their contents back.
//
// The API is stable: StartDirtyTracking, then CollectDirty as often as
// needed (each call returns what was written since the previous one),
// then StopDirtyTracking.

// DirtyBitmap has one bitmap per RAM region (region i is KVM slot i), one
// bit per 4 KiB page, bit p%64 of word p/64 for page p.
type DirtyBitmap [][]uint64

// ErrDirtyTracking reports a tracking call out of order.
var ErrDirtyTracking = errors.New("dirty page tracking")

// NewDirtyBitmap returns an empty bitmap sized for the machine's RAM.
func (m *Machine) NewDirtyBitmap() DirtyBitmap {
	regions := m.mem.Regions()
	b := make(DirtyBitmap, len(regions))
	for i, r := range regions {
		b[i] = make([]uint64, guestmem.BitmapWords(r.Size))
	}
	return b
}

// DirtyTracking reports whether dirty pages are being tracked.
func (m *Machine) DirtyTracking() bool { return m.mem.DirtyTracking() }

// StartDirtyTracking starts recording written pages: device writes, and
// the guest's through dirty logging on every RAM slot. The VM may run.
func (m *Machine) StartDirtyTracking() error {
	if m.mem.DirtyTracking() {
		return fmt.Errorf("%w: already on", ErrDirtyTracking)
	}
	m.mem.StartDirtyTracking()
	if err := m.setDirtyLog(kvm.MemLogDirtyPages); err != nil {
		m.setDirtyLog(0)
		m.mem.StopDirtyTracking()
		return fmt.Errorf("%w: %w", ErrDirtyTracking, err)
	}
	return nil
}

// StopDirtyTracking stops recording and turns dirty logging off.
func (m *Machine) StopDirtyTracking() error {
	if !m.mem.DirtyTracking() {
		return nil
	}
	m.mem.StopDirtyTracking()
	if err := m.setDirtyLog(0); err != nil {
		return fmt.Errorf("%w: %w", ErrDirtyTracking, err)
	}
	return nil
}

// setDirtyLog registers every RAM slot again with the given flags.
func (m *Machine) setDirtyLog(flags uint32) error {
	for i, r := range m.mem.Regions() {
		if err := m.vm.SetUserMemoryRegion(uint32(i), flags, r.GPA, r.Size, r.HostAddr()); err != nil {
			return err
		}
	}
	return nil
}

// CollectDirty ORs into dst (from NewDirtyBitmap) every page written
// since tracking started or since the previous CollectDirty, and starts
// a new interval. The VM may run meanwhile: a page written during the
// call lands in this interval or the next.
func (m *Machine) CollectDirty(dst DirtyBitmap) error {
	if !m.mem.DirtyTracking() {
		return fmt.Errorf("%w: not on", ErrDirtyTracking)
	}
	regions := m.mem.Regions()
	if len(dst) != len(regions) {
		return fmt.Errorf("%w: bitmap for %d regions, the machine has %d", ErrDirtyTracking, len(dst), len(regions))
	}
	var scratch []uint64
	for i, r := range regions {
		words := guestmem.BitmapWords(r.Size)
		if len(dst[i]) < words {
			return fmt.Errorf("%w: bitmap of region %d has %d words, needs %d", ErrDirtyTracking, i, len(dst[i]), words)
		}
		if cap(scratch) < words {
			scratch = make([]uint64, words)
		}
		scratch = scratch[:words]
		if err := m.vm.DirtyLog(uint32(i), scratch); err != nil {
			return fmt.Errorf("%w: %w", ErrDirtyTracking, err)
		}
		for j, w := range scratch {
			dst[i][j] |= w
		}
		if err := m.mem.TakeDirty(i, dst[i]); err != nil {
			return fmt.Errorf("%w: %w", ErrDirtyTracking, err)
		}
	}
	return nil
}

// markDirty sets the bits of the pages holding [gpa, gpa+n) in b.
func (m *Machine) markDirty(b DirtyBitmap, gpa, n uint64) {
	if n == 0 {
		return
	}
	for i, r := range m.mem.Regions() {
		if gpa+n <= r.GPA || gpa >= r.GPA+r.Size || i >= len(b) {
			continue
		}
		start := (max(gpa, r.GPA) - r.GPA) / guestmem.PageSize
		end := (min(gpa+n, r.GPA+r.Size) - r.GPA - 1) / guestmem.PageSize
		for p := start; p <= end && p/64 < uint64(len(b[i])); p++ {
			b[i][p/64] |= 1 << (p % 64)
		}
	}
}
