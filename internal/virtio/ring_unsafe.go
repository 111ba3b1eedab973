package virtio

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// casRetries bounds the compare-and-swap loop of store16: only a guest
// rewriting the two bytes beside a device-owned field in a tight loop can
// make it fail, and such a guest gets an error instead of a hung worker.
const casRetries = 1024

// ringWord returns the naturally aligned 32-bit word of guest memory that
// holds the 16-bit field at gpa, and the field's bit shift inside it. The
// word is obtained through guestmem's bounds check.
func ringWord(mem *guestmem.Memory, gpa uint64) (*uint32, uint, error) {
	if gpa%2 != 0 {
		return nil, 0, fmt.Errorf("%w: %#x", ErrRingMisaligned, gpa)
	}
	base := gpa &^ 3
	s, err := mem.Slice(base, 4)
	if err != nil {
		return nil, 0, fmt.Errorf("ring field at %#x: %w", gpa, err)
	}
	// SAFETY: s is 4 bytes of the guest RAM mmap (outside the Go heap) that guestmem bounds-checked; alignment is checked next.
	p := unsafe.Pointer(&s[0])
	if uintptr(p)%4 != 0 {
		return nil, 0, fmt.Errorf("%w: %#x", ErrRingMisaligned, gpa)
	}
	return (*uint32)(p), uint(gpa-base) * 8, nil
}

// load16 atomically loads the 16-bit field at gpa (acquire ordering).
func load16(mem *guestmem.Memory, gpa uint64) (uint16, error) {
	p, shift, err := ringWord(mem, gpa)
	if err != nil {
		return 0, err
	}
	return uint16(atomic.LoadUint32(p) >> shift), nil
}

// store16 atomically replaces the 16-bit field at gpa, leaving the other
// half of its word as the guest last wrote it. On amd64 the locked
// compare-and-swap is also a full memory barrier.
func store16(mem *guestmem.Memory, gpa uint64, v uint16) error {
	p, shift, err := ringWord(mem, gpa)
	if err != nil {
		return err
	}
	mask := uint32(0xffff) << shift
	for range casRetries {
		old := atomic.LoadUint32(p)
		if atomic.CompareAndSwapUint32(p, old, old&^mask|uint32(v)<<shift) {
			mem.MarkDirty(gpa, 2)
			return nil
		}
	}
	return fmt.Errorf("%w: %#x", ErrRingContention, gpa)
}

// store32 atomically stores the aligned 32-bit word at gpa (release
// ordering; a full barrier on amd64).
func store32(mem *guestmem.Memory, gpa uint64, v uint32) error {
	if gpa%4 != 0 {
		return fmt.Errorf("%w: %#x", ErrRingMisaligned, gpa)
	}
	p, _, err := ringWord(mem, gpa)
	if err != nil {
		return err
	}
	atomic.StoreUint32(p, v)
	mem.MarkDirty(gpa, 4)
	return nil
}
