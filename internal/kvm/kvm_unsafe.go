package kvm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ptrArg is a pointer handed to an ioctl.
type ptrArg = unsafe.Pointer

// ptr turns a pointer to an ABI struct into an ioctl argument.
func ptr[T any](p *T) ptrArg {
	// SAFETY: T is one of the generated ABI structs whose layout matches the kernel's (size-tested).
	return unsafe.Pointer(p)
}

func ioctl(fd, req, arg uintptr) (uintptr, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, fd, req, arg)
	if e != 0 {
		return 0, e
	}
	return r, nil
}

func ioctlPtr(fd, req uintptr, p unsafe.Pointer) error {
	// SAFETY: p points to a live, correctly sized ABI struct for req.
	_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(p))
	if e != 0 {
		return e
	}
	return nil
}

func ioctlPtrRet(fd, req uintptr, p unsafe.Pointer) (uintptr, error) {
	// SAFETY: p points to a live, correctly sized ABI struct for req.
	r, _, e := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(p))
	if e != 0 {
		return 0, e
	}
	return r, nil
}

// cpuidIoctl calls a kvm_cpuid2 getter with room for max entries.
func cpuidIoctl(fd, req uintptr, max int) ([]CPUIDEntry2, error) {
	hdr := int(unsafe.Sizeof(cpuid2Header{}))
	esz := int(unsafe.Sizeof(CPUIDEntry2{}))
	buf := make([]uint64, (hdr+max*esz+7)/8)
	// SAFETY: buf is 8-byte aligned and large enough for the header plus max entries.
	h := (*cpuid2Header)(unsafe.Pointer(&buf[0]))
	h.Nent = uint32(max)
	if err := ioctlPtr(fd, req, unsafe.Pointer(&buf[0])); err != nil {
		return nil, err
	}
	n := int(h.Nent)
	if n > max {
		n = max
	}
	// SAFETY: the entries follow the header in buf; n is bounded by max.
	src := unsafe.Slice((*CPUIDEntry2)(unsafe.Add(unsafe.Pointer(&buf[0]), hdr)), n)
	return append([]CPUIDEntry2(nil), src...), nil
}

func setCPUIDIoctl(fd uintptr, entries []CPUIDEntry2) error {
	hdr := int(unsafe.Sizeof(cpuid2Header{}))
	esz := int(unsafe.Sizeof(CPUIDEntry2{}))
	buf := make([]uint64, (hdr+len(entries)*esz+7)/8)
	// SAFETY: buf holds the header followed by len(entries) entries.
	h := (*cpuid2Header)(unsafe.Pointer(&buf[0]))
	h.Nent = uint32(len(entries))
	copy(unsafe.Slice((*CPUIDEntry2)(unsafe.Add(unsafe.Pointer(&buf[0]), hdr)), len(entries)), entries)
	return ioctlPtr(fd, ioctlSetCPUID2, unsafe.Pointer(&buf[0]))
}

// msrsIoctl runs KVM_GET_MSRS or KVM_SET_MSRS; it returns how many entries were processed.
func msrsIoctl(fd, req uintptr, entries []MSREntry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	hdr := int(unsafe.Sizeof(msrsHeader{}))
	esz := int(unsafe.Sizeof(MSREntry{}))
	buf := make([]uint64, (hdr+len(entries)*esz+7)/8)
	// SAFETY: buf holds the header followed by len(entries) entries.
	h := (*msrsHeader)(unsafe.Pointer(&buf[0]))
	h.Nmsrs = uint32(len(entries))
	dst := unsafe.Slice((*MSREntry)(unsafe.Add(unsafe.Pointer(&buf[0]), hdr)), len(entries))
	copy(dst, entries)
	n, err := ioctlPtrRet(fd, req, unsafe.Pointer(&buf[0]))
	if err != nil {
		return 0, err
	}
	copy(entries, dst)
	return int(n), nil
}

func msrListIoctl(fd, req uintptr) ([]uint32, error) {
	for max := 256; max <= 16384; max *= 4 {
		buf := make([]uint32, 1+max)
		buf[0] = uint32(max)
		err := ioctlPtr(fd, req, unsafe.Pointer(&buf[0]))
		if err == unix.E2BIG {
			continue
		}
		if err != nil {
			return nil, err
		}
		n := int(buf[0])
		if n > max {
			n = max
		}
		return append([]uint32(nil), buf[1:1+n]...), nil
	}
	return nil, ErrTooManyMSRs
}

func signalMaskIoctl(fd uintptr, mask uint64) error {
	// struct kvm_signal_mask { __u32 len; __u8 sigset[]; } with the kernel's 8-byte sigset.
	var buf [2]uint64
	// SAFETY: buf is 16 bytes: a 4-byte length, padding to the 4-byte sigset offset, and 8 bytes of set.
	b := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), 16)
	le.PutUint32(b[0:], 8)
	le.PutUint64(b[4:], mask)
	return ioctlPtr(fd, ioctlSetSignalMask, unsafe.Pointer(&buf[0]))
}

func gsiRoutingIoctl(fd uintptr, entries []IRQRoutingEntry) error {
	hdr := int(unsafe.Sizeof(irqRoutingHeader{}))
	esz := int(unsafe.Sizeof(IRQRoutingEntry{}))
	buf := make([]uint64, (hdr+len(entries)*esz+7)/8)
	// SAFETY: buf holds the header followed by len(entries) entries.
	h := (*irqRoutingHeader)(unsafe.Pointer(&buf[0]))
	h.Nr = uint32(len(entries))
	copy(unsafe.Slice((*IRQRoutingEntry)(unsafe.Add(unsafe.Pointer(&buf[0]), hdr)), len(entries)), entries)
	return ioctlPtr(fd, ioctlSetGSIRouting, unsafe.Pointer(&buf[0]))
}

func dirtyLogIoctl(fd uintptr, slot uint32, bitmap []uint64) error {
	if len(bitmap) == 0 {
		return unix.EINVAL
	}
	// SAFETY: the bitmap address stays valid for the syscall; bitmap is kept alive below.
	d := dirtyLog{Slot: slot, Bitmap: uint64(uintptr(unsafe.Pointer(&bitmap[0])))}
	err := ioctlPtr(fd, ioctlGetDirtyLog, unsafe.Pointer(&d))
	runtimeKeepAlive(bitmap)
	return err
}

// IRQChipRoute builds a routing entry from gsi to an irqchip pin.
func IRQChipRoute(gsi, chip, pin uint32) IRQRoutingEntry {
	e := IRQRoutingEntry{Gsi: gsi, Type: IRQRoutingIRQChip}
	// SAFETY: U is the routing union; the irqchip variant is its first 8 bytes.
	*(*IRQRoutingIRQChipData)(unsafe.Pointer(&e.U[0])) = IRQRoutingIRQChipData{Irqchip: chip, Pin: pin}
	return e
}

// MSIRoute builds a routing entry from gsi to an MSI message.
func MSIRoute(gsi uint32, addr uint64, data uint32) IRQRoutingEntry {
	e := IRQRoutingEntry{Gsi: gsi, Type: IRQRoutingMSI}
	// SAFETY: U is the routing union; the MSI variant is its first 16 bytes.
	*(*IRQRoutingMSIData)(unsafe.Pointer(&e.U[0])) = IRQRoutingMSIData{Lo: uint32(addr), Hi: uint32(addr >> 32), Data: data}
	return e
}

// runWord returns the first 32-bit word of kvm_run (request_interrupt_window,
// immediate_exit, padding) for atomic updates from other threads.
func (r *Run) runWord() *uint32 {
	// SAFETY: kvm_run is page aligned and at least one page long; the first 4 bytes are an aligned word.
	return (*uint32)(unsafe.Pointer(&r.b[0]))
}
