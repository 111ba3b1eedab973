package kvm

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Coalesced MMIO (KVM_REGISTER_COALESCED_MMIO): KVM buffers guest writes
// to registered zones in a ring page shared with user space instead of
// exiting for each, and user space replays them, in order, at its next
// exit. It suits registers whose writes need no immediate answer.
const (
	ioctlRegisterCoalescedMMIO   = 0x4010ae67 // _IOW(KVMIO, 0x67, struct kvm_coalesced_mmio_zone)
	ioctlUnregisterCoalescedMMIO = 0x4010ae68 // _IOW(KVMIO, 0x68, struct kvm_coalesced_mmio_zone)

	// struct kvm_coalesced_mmio_ring { __u32 first, last; entries[] } and
	// struct kvm_coalesced_mmio { __u64 phys_addr; __u32 len; __u32 pio;
	// __u8 data[8]; }, in one page.
	coalescedRingHeader = 8
	coalescedEntrySize  = 24
	coalescedRingPage   = 4096
	coalescedRingMax    = (coalescedRingPage - coalescedRingHeader) / coalescedEntrySize
)

// coalescedZone is struct kvm_coalesced_mmio_zone.
type coalescedZone struct {
	Addr uint64
	Size uint32
	PIO  uint32
}

// coalescedState is a VM's share of the ring: the lock that orders the
// vCPUs draining it.
type coalescedState struct {
	mu sync.Mutex
}

// CoalescedMMIO registers a zone of guest-physical addresses whose writes
// KVM buffers (or removes it, with unregister). It fails on hosts whose
// KVM has no coalesced MMIO; writes then exit as usual.
func (vm *VM) CoalescedMMIO(addr uint64, size uint32, unregister bool) error {
	if vm.ringPage == 0 {
		return fmt.Errorf("kvm: no coalesced MMIO on this host")
	}
	z := coalescedZone{Addr: addr, Size: size}
	req, name := uintptr(ioctlRegisterCoalescedMMIO), "KVM_REGISTER_COALESCED_MMIO"
	if unregister {
		req, name = ioctlUnregisterCoalescedMMIO, "KVM_UNREGISTER_COALESCED_MMIO"
	}
	if err := ioctlPtr(vm.fd(), req, ptr(&z)); err != nil {
		return fmt.Errorf("kvm: %s %#x+%d: %w", name, addr, size, err)
	}
	return nil
}

// coalescedRingPage returns the page of a vCPU mapping of runSize bytes
// that holds the ring, or 0 when the host has none.
func (s *System) coalescedRingPage(runSize int) int {
	off := s.CheckExtension(CapCoalescedMMIO)
	if off <= 0 || (off+1)*coalescedRingPage > runSize || unix.Getpagesize() != coalescedRingPage {
		return 0
	}
	return off
}

// Writer receives replayed writes: an MMIO or port I/O bus.
type Writer interface {
	Write(addr uint64, data []byte) bool
}

// DrainCoalesced replays the writes KVM buffered in the coalesced ring,
// oldest first, to mmio (or pio for port zones), and returns how many.
// Call it after every KVM_RUN, before handling the exit, so that the
// buffered writes take effect before anything the guest did after them.
// All vCPUs share the ring; a VM-wide lock orders them. It does not
// allocate.
func (c *VCPU) DrainCoalesced(mmio, pio Writer) int {
	ring := c.ring
	if ring == nil {
		return 0
	}
	first, last := ringWord(ring, 0), ringWord(ring, 4)
	if atomic.LoadUint32(first) == atomic.LoadUint32(last) {
		return 0
	}
	c.coalesced.mu.Lock()
	defer c.coalesced.mu.Unlock()
	// At most one ring's worth per call, so that other vCPUs writing
	// meanwhile cannot keep this one here.
	n := 0
	for ; n < coalescedRingMax; n++ {
		f := atomic.LoadUint32(first)
		if f == atomic.LoadUint32(last) || f >= coalescedRingMax {
			return n
		}
		e := ring[coalescedRingHeader+int(f)*coalescedEntrySize:][:coalescedEntrySize]
		addr := le.Uint64(e[0:])
		size := min(le.Uint32(e[8:]), 8)
		if le.Uint32(e[12:]) != 0 {
			pio.Write(addr, e[16:16+size])
		} else {
			mmio.Write(addr, e[16:16+size])
		}
		atomic.StoreUint32(first, (f+1)%coalescedRingMax)
	}
	return n
}

// ringWord is a 32-bit word of the ring header, for atomic access.
func ringWord(ring []byte, off int) *uint32 {
	// SAFETY: the ring is a page of a page-aligned mapping; off is 0 or 4.
	return (*uint32)(unsafe.Pointer(&ring[off]))
}
