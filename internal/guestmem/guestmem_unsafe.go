package guestmem

import (
	"os"
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

// mmapGuarded maps size bytes between two PROT_NONE guard pages, so the
// guest RAM mapping never merges with a neighbouring anonymous mapping
// (which keeps /proc/PID/smaps accounting exact and catches overruns).
// The mapping starts on a multiple of align (a power of two, at least a
// page): hugetlbfs mappings must, and transparent huge pages can then back
// the whole of it. It returns the usable mapping and the whole
// reservation to unmap.
func mmapGuarded(fd int, offset int64, size, align int, prot, flags int) (mem, reservation []byte, err error) {
	page := os.Getpagesize()
	align = max(align, page)
	reservation, err = unix.Mmap(-1, 0, size+2*page+align, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, nil, err
	}
	// SAFETY: only the address is taken, to place the mapping inside the reservation.
	base := uintptr(unsafe.Pointer(&reservation[0]))
	start := (int(base)+page+align-1)&^(align-1) - int(base) // ≥ page, < page+align
	// SAFETY: the target range lies inside reservation, which we own; MAP_FIXED replaces only it.
	addr := uintptr(unsafe.Pointer(&reservation[start]))
	r, _, e := unix.Syscall6(unix.SYS_MMAP, addr, uintptr(size), uintptr(prot), uintptr(flags|unix.MAP_FIXED), uintptr(fd), uintptr(offset))
	if e != 0 {
		unix.Munmap(reservation)
		return nil, nil, e
	}
	if r != addr {
		unix.Munmap(reservation)
		return nil, nil, unix.EINVAL
	}
	return reservation[start : start+size : start+size], reservation, nil
}
