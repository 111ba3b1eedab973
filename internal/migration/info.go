package migration

import (
	"errors"
	"fmt"
	"time"
)

// Status is a migration's state, with QEMU's names.
type Status string

// The statuses a migration goes through: setup, active, then completed,
// failed or cancelled. None means no migration was started.
const (
	StatusNone      Status = "none"
	StatusSetup     Status = "setup"
	StatusActive    Status = "active"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Done reports whether the status is final.
func (s Status) Done() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// Params tune a migration. They may change while it runs.
type Params struct {
	// DowntimeLimit is the longest the VM should stay paused: the
	// sender stops the VM once what is left to send fits in it at the
	// measured bandwidth.
	DowntimeLimit time.Duration
	// MaxBandwidth caps the live passes in bytes per second (0: no cap).
	// The final pass, with the VM paused, is never throttled.
	MaxBandwidth int64
	// MaxPasses bounds the live passes: a guest that dirties memory
	// faster than it can be sent is stopped after this many.
	MaxPasses int
	// Verify sends, with the VM paused, a checksum of every page, which
	// the target compares with what it received; a difference fails the
	// migration. It lengthens the downtime (hashing all of RAM): a
	// debugging aid.
	Verify bool
}

// Defaults for Params. QEMU's default downtime limit is 300 ms; Vireo
// aims lower.
const (
	DefaultDowntimeLimit = 50 * time.Millisecond
	DefaultMaxPasses     = 30
	// MaxDowntimeLimit is the largest downtime limit accepted (QEMU's).
	MaxDowntimeLimit = 2000 * time.Second
)

// DefaultParams returns the default parameters.
func DefaultParams() Params {
	return Params{DowntimeLimit: DefaultDowntimeLimit, MaxPasses: DefaultMaxPasses}
}

// ErrParams reports an out-of-range parameter.
var ErrParams = errors.New("migration: invalid parameter")

// Check validates p.
func (p Params) Check() error {
	switch {
	case p.DowntimeLimit < 0 || p.DowntimeLimit > MaxDowntimeLimit:
		return fmt.Errorf("%w: downtime limit %v (0 to %v)", ErrParams, p.DowntimeLimit, MaxDowntimeLimit)
	case p.MaxBandwidth < 0:
		return fmt.Errorf("%w: max bandwidth %d bytes/s", ErrParams, p.MaxBandwidth)
	case p.MaxPasses < 1:
		return fmt.Errorf("%w: %d passes", ErrParams, p.MaxPasses)
	}
	return nil
}

// Info is a migration's progress and outcome, as query-migrate reports it.
type Info struct {
	Status Status
	// Error says why a migration failed.
	Error string
	// TotalTime runs from the start to now, or to the end once done.
	TotalTime time.Duration
	// SetupTime is the time to connect and start dirty logging.
	SetupTime time.Duration
	// Downtime is how long the VM was stopped (once completed): from the
	// request to pause it (Source.Finish) to the target's
	// acknowledgement, which comes once the target has rebuilt the VM.
	Downtime time.Duration
	// ExpectedDowntime is the estimate for what is left (while active).
	ExpectedDowntime time.Duration
	// FinalWrite is the part of Downtime spent sending the last pages
	// and the device state; the rest is pausing the VM and waiting for
	// the target to rebuild it.
	FinalWrite time.Duration
	RAM        RAMStats
}

// RAMStats count the RAM transfer, with QEMU's meanings.
type RAMStats struct {
	Transferred    uint64  // bytes sent on the stream so far
	Remaining      uint64  // bytes of dirty pages still to send
	Total          uint64  // guest RAM in bytes
	Duplicate      uint64  // zero pages (sent as a flag, or not at all in pass 1)
	Normal         uint64  // pages sent with their data
	NormalBytes    uint64  // bytes of those pages
	DirtyPagesRate uint64  // pages dirtied per second in the last pass
	Mbps           float64 // throughput of the last pass in megabits per second
	DirtySyncCount uint64  // dirty bitmap collections, the final one included
	DowntimeBytes  uint64  // bytes sent with the VM paused
	Passes         int     // RAM passes completed
}
