package qmp

import "time"

// Machine is what the QMP commands operate on. The VMM satisfies it
// through a small adapter; tests use a fake. Every method may be called
// from any client's goroutine at any time, including concurrently.
type Machine interface {
	// Status is the VM's run state.
	Status() RunState
	// Pause stops the vCPUs (QMP stop); pausing a paused VM succeeds.
	Pause() error
	// Resume restarts them (QMP cont); resuming a running VM succeeds.
	Resume() error
	// Reset resets the machine as the reset button would.
	Reset() error
	// Powerdown asks the guest to power off, as a power button would.
	Powerdown() error
	// Quit ends the VM; the process exits once the reply is sent.
	Quit() error
	// Snapshot saves the whole VM into a directory (x-vireo-snapshot-create).
	Snapshot(dir string) error
	// CPUs describes the vCPUs.
	CPUs() []CPU
	// MemorySize is the boot RAM size in bytes.
	MemorySize() uint64
	// Blocks describes the block devices (none until disks exist).
	Blocks() []BlockDevice
	// Balloon returns the memory the guest currently has according to
	// its balloon device, or ErrNoBalloon.
	Balloon() (actual uint64, err error)
	// SetBalloon sets the balloon target, or returns ErrNoBalloon.
	SetBalloon(target uint64) error
	// Subscribe registers fn for every lifecycle event and returns the
	// function that ends the subscription. fn must not block.
	Subscribe(fn func(Event)) (cancel func())

	// Live migration (migrate.go). Migrate starts a migration to uri and
	// returns at once; MigrateCancel stops it (the VM keeps running);
	// MigrateIncoming gives a target started with "defer" its URI.
	Migrate(uri string) error
	MigrateCancel() error
	MigrateIncoming(uri string) error
	MigrationStatus() Migration
	MigrationParameters() MigrationParameters
	SetMigrationParameters(MigrationParameters) error
}

// RunState is a VM run state as QMP's query-status names it.
type RunState string

// The run states a Vireo VM goes through.
const (
	StatePrelaunch     RunState = "prelaunch"
	StateRunning       RunState = "running"
	StatePaused        RunState = "paused"
	StateShutdown      RunState = "shutdown"
	StateInternalError RunState = "internal-error"
)

// CPU describes one vCPU.
type CPU struct {
	Index    int // cpu-index
	ThreadID int // host thread id of the vCPU thread
	// Topology position, as QEMU's props.
	Socket, Core, Thread int
}

// BlockDevice describes one disk for query-block.
type BlockDevice struct {
	Device   string // id, e.g. "disk0"
	File     string // backing file on the host
	Format   string // image format; "raw" when empty
	ReadOnly bool
	Size     uint64 // virtual size in bytes
	Cache    string // "writeback" (the default when empty), "none" or "unsafe"
}

// Event is an asynchronous QMP event.
type Event struct {
	Name string    // STOP, RESUME, RESET, SHUTDOWN, POWERDOWN, ...
	Time time.Time // when it happened
	Data any       // the event's data member, nil for none
}

// ShutdownData is the data of SHUTDOWN and RESET events.
type ShutdownData struct {
	Guest  bool   `json:"guest"`
	Reason string `json:"reason"`
}

// VersionInfo is the QEMU version Vireo reports, in the greeting and
// query-version: clients that check the version see the QEMU whose
// protocol Vireo speaks.
type VersionInfo struct {
	QEMU    VersionTriple `json:"qemu"`
	Package string        `json:"package"`
}

// VersionTriple is a QEMU version number.
type VersionTriple struct {
	Micro int `json:"micro"`
	Minor int `json:"minor"`
	Major int `json:"major"`
}

// CompatVersion is the QEMU release whose QMP Vireo implements: 7.2.0,
// the version Vireo's commands, events and error messages were checked
// against.
var CompatVersion = VersionTriple{Major: 7, Minor: 2, Micro: 0}
