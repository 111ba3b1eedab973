package blk

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// preadv reads into the buffers that iov describes, without allocating
// (unix.Preadv builds its iovec array on each call).
func preadv(fd int, iov []unix.Iovec, off int64) (int, error) {
	// SAFETY: iov is a non-empty array of iovecs whose buffers the caller keeps mapped; the kernel reads len(iov) entries.
	n, _, e := unix.Syscall6(unix.SYS_PREADV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)), uintptr(off), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// pwritev writes the buffers that iov describes, without allocating.
func pwritev(fd int, iov []unix.Iovec, off int64) (int, error) {
	// SAFETY: as in preadv; the kernel only reads the buffers.
	n, _, e := unix.Syscall6(unix.SYS_PWRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)), uintptr(off), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
