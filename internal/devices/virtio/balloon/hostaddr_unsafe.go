package balloon

import (
	"unsafe"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// gpaOf returns the guest physical address of b, a slice of guest RAM
// (as a descriptor chain's WritableSlices returns), or false when b does
// not start inside one of regions.
func gpaOf(regions []guestmem.Region, b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	// SAFETY: only the address of b's first byte is taken, to find b in a guest RAM mapping; nothing is accessed through it.
	addr := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	for i := range regions {
		r := &regions[i]
		base := r.HostAddr()
		if addr >= base && addr-base < r.Size {
			return r.GPA + (addr - base), true
		}
	}
	return 0, false
}
