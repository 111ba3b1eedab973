package fcapi

import (
	"time"

	vmetrics "github.com/vireo-vmm/vireo/internal/metrics"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// Instance is a started VM as the runtime half of the API drives it.
type Instance interface {
	Pause() error
	Resume() error
	// SendCtrlAltDel presses Ctrl+Alt+Del on the guest's keyboard.
	SendCtrlAltDel() error
	State() vmm.State
	// ExitCounts sums the vCPU exit counters since the VM started.
	ExitCounts() ExitCounts
	// Metrics reads the devices' and vCPUs' counters.
	Metrics() vmetrics.Snapshot
	// Balloon describes the balloon device (vmm.ErrNoBalloon without one).
	Balloon() (vmm.BalloonInfo, error)
	// SetBalloonSize sets the balloon's target size in bytes.
	SetBalloonSize(bytes uint64) error
	// SetBalloonStatsInterval changes the balloon's statistics interval.
	SetBalloonStatsInterval(d time.Duration) error
}

// ExitCounts are a VM's vCPU exits by kind, summed over its vCPUs.
type ExitCounts struct {
	IO, MMIO, HLT, Intr, Other uint64
}

// StartFunc builds and starts the VM that preboot requests described. It
// returns once the VM runs, or with the reason it could not start.
type StartFunc func(cfg vmm.Config) (Instance, error)

// ControllerInstance adapts a running vmm.Controller to Instance. Its
// SendCtrlAltDel is the controller's Powerdown, which presses Ctrl+Alt+Del
// on the i8042 keyboard.
func ControllerInstance(c *vmm.Controller) Instance { return controllerInstance{c} }

type controllerInstance struct{ c *vmm.Controller }

func (i controllerInstance) Pause() error          { return i.c.Pause() }
func (i controllerInstance) Resume() error         { return i.c.Resume() }
func (i controllerInstance) SendCtrlAltDel() error { return i.c.Powerdown() }
func (i controllerInstance) State() vmm.State      { return i.c.State() }

func (i controllerInstance) Metrics() vmetrics.Snapshot { return i.c.Metrics() }

func (i controllerInstance) Balloon() (vmm.BalloonInfo, error) { return i.c.Balloon() }
func (i controllerInstance) SetBalloonSize(n uint64) error     { return i.c.SetBalloonSize(n) }
func (i controllerInstance) SetBalloonStatsInterval(d time.Duration) error {
	return i.c.SetBalloonStatsInterval(d)
}

func (i controllerInstance) ExitCounts() ExitCounts {
	var e ExitCounts
	m := i.c.Machine()
	if m == nil {
		return e
	}
	for _, v := range m.VCPUs() {
		s := v.Stats()
		e.IO += s.IO.Load()
		e.MMIO += s.MMIO.Load()
		e.HLT += s.HLT.Load()
		e.Intr += s.Intr.Load()
		e.Other += s.Other.Load()
	}
	return e
}
