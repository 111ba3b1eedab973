package kvm

import "unsafe"

// hostAddr returns the address of a mapping for KVM_SET_USER_MEMORY_REGION.
func hostAddr(b []byte) uint64 {
	// SAFETY: only the address of a live mmap is taken.
	return uint64(uintptr(unsafe.Pointer(&b[0])))
}
