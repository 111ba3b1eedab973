package net

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// writev writes bufs to fd with one writev(2), building the iovec array
// in iov (at least len(bufs) entries) so that nothing is allocated.
// Empty buffers are left out.
func writev(fd int, iov []unix.Iovec, bufs [][]byte) (int, error) {
	n := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		iov[n].Base = &b[0]
		iov[n].SetLen(len(b))
		n++
	}
	if n == 0 {
		return 0, nil
	}
	// SAFETY: iov[:n] is a live slice of iovecs pointing into guest RAM (outside the Go heap) or the pair's header buffer, read by the kernel only during the call.
	r, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
