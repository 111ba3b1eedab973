package hostos

import (
	"golang.org/x/sys/unix"
)

// KickSignal is the real-time signal sent to a vCPU thread to make KVM_RUN
// return. The Go runtime installs a handler for it that does nothing when
// no one has called signal.Notify for it, which is what a kick needs.
const KickSignal = unix.Signal(40) // SIGRTMIN+6 on Linux

// Gettid returns the calling thread's id.
func Gettid() int { return unix.Gettid() }

// Tgkill sends sig to thread tid of this process.
func Tgkill(tid int, sig unix.Signal) error {
	return unix.Tgkill(unix.Getpid(), tid, sig)
}

// RunSignalMask is the mask for KVM_SET_SIGNAL_MASK: every signal blocked
// while the vCPU is in the guest except KickSignal, so the Go runtime's
// preemption signal (SIGURG) and process signals cause no needless exits;
// they stay pending and are handled once KVM_RUN returns.
func RunSignalMask() uint64 {
	all := ^uint64(0)
	return all &^ (1 << (uint(KickSignal) - 1))
}
