package hostmem

import "unsafe"

// addrOf returns the address of b's first byte.
func addrOf(b []byte) uint64 {
	// SAFETY: only the address of a live mapping is taken, to find it in smaps.
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
