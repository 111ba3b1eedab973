// Package harness is what the benchmark programs under bench/ share:
// starting a VMM with its serial console on a pipe and timing markers on
// it (Proc, TimeToMarker), QEMU's and Vireo's command lines for one guest
// (Guest), a plain QMP client (QMP), summary statistics (Summarize), the
// host's description and load (Host, LoadAverage), rewriting one
// program's section of BENCHMARKS.md (UpdateFile), and a program's main
// (Main).
package harness

import "errors"

// Errors of this package.
var (
	// ErrUsage reports bad command-line flags.
	ErrUsage = errors.New("usage")
	// ErrMissing reports a prerequisite that is not there: a program,
	// the guest kernel, /dev/kvm.
	ErrMissing = errors.New("missing prerequisite")
	// ErrTimeout reports something that did not happen in time.
	ErrTimeout = errors.New("timed out")
	// ErrExited reports a process that ended before what was awaited.
	ErrExited = errors.New("process exited")
	// ErrQMP reports a QMP session that failed or an error reply.
	ErrQMP = errors.New("qmp")
)
