package guestmem

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mincore reports residency of each page of b into vec (one byte per page).
func mincore(b []byte, vec []byte) error {
	if len(b) == 0 {
		return nil
	}
	// SAFETY: b is a live mapping and vec has one byte per page of b; the kernel writes only vec.
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if e != 0 {
		return e
	}
	return nil
}

// HostAddr returns the host virtual address of the region's mapping, for
// KVM_SET_USER_MEMORY_REGION.
func (r *Region) HostAddr() uint64 {
	if len(r.Host) == 0 {
		return 0
	}
	// SAFETY: only the address is taken; the mapping outlives the VM that uses it.
	return uint64(uintptr(unsafe.Pointer(&r.Host[0])))
}
