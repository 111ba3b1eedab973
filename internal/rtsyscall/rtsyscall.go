// Package rtsyscall makes system calls that block for long stretches
// (KVM_RUN, a device worker's wait for events) without keeping the Go
// runtime's monitor thread busy.
//
// Go's syscall.Syscall keeps the caller's scheduler slot (P) reserved for
// a quick return. While the call blocks, the runtime's monitor thread
// (sysmon) polls that slot at a rising interval, from 20 µs up to 10 ms,
// and finally hands it to another thread; the return then finds every
// slot idle and wakes the monitor once more. In a VMM whose vCPUs sit in
// KVM_RUN and whose workers sit in ppoll, that polling was most of the
// CPU time spent outside the vCPUs. The calls here release the slot on
// entry instead, as the runtime does for its own blocking waits, so the
// monitor can sleep through them.
package rtsyscall

import (
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The runtime's system-call bracket, in the variant that gives the slot
// away at once. Both are exported by the runtime for linkname
// (go.dev/issue/67401).
//
//go:linkname entersyscallblock runtime.entersyscallblock
func entersyscallblock()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// Blocking6 makes a system call that is expected to block. Pointer
// arguments must be kept alive by the caller (runtime.KeepAlive): unlike
// syscall.Syscall6, the compiler does not do it for this function.
//
//go:nosplit
func Blocking6(trap, a1, a2, a3, a4, a5, a6 uintptr) (r1, r2 uintptr, err syscall.Errno) {
	entersyscallblock()
	r1, r2, err = syscall.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
	exitsyscall()
	return r1, r2, err
}

// Ppoll is unix.Ppoll without a signal mask, releasing the scheduler
// slot while it waits. A zero timeout does not block and is made the
// ordinary way.
func Ppoll(fds []unix.PollFd, timeout *unix.Timespec) (int, error) {
	if len(fds) == 0 || (timeout != nil && timeout.Sec == 0 && timeout.Nsec == 0) {
		return unix.Ppoll(fds, timeout, nil)
	}
	// SAFETY: fds and timeout stay alive across the call (KeepAlive
	// below), and a goroutine's stack does not move while it is in a
	// system call.
	n, _, e := Blocking6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)),
		uintptr(unsafe.Pointer(timeout)), 0, 0, 0)
	runtime.KeepAlive(fds)
	runtime.KeepAlive(timeout)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// EpollWait is unix.EpollWait, releasing the scheduler slot while it
// waits. A zero timeout does not block and is made the ordinary way.
func EpollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	if len(events) == 0 || msec == 0 {
		return unix.EpollWait(epfd, events, msec)
	}
	// SAFETY: as in Ppoll.
	n, _, e := Blocking6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)),
		uintptr(msec), 0, 0)
	runtime.KeepAlive(events)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
