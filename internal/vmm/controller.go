package vmm

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/vireo-vmm/vireo/internal/devices/legacy"
	"github.com/vireo-vmm/vireo/internal/kvm"
	"github.com/vireo-vmm/vireo/internal/vcpu"
)

// State is the VM's lifecycle state, owned by the controller goroutine.
type State int

const (
	StateCreated State = iota
	StateRunning
	StatePaused
	StateStopped
)

func (s State) String() string {
	switch s {
	case StateCreated:
		return "created"
	case StateRunning:
		return "running"
	case StatePaused:
		return "paused"
	case StateStopped:
		return "stopped"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// EventKind names a lifecycle event.
type EventKind string

const (
	EventStart    EventKind = "START"
	EventStop     EventKind = "STOP"   // paused
	EventResume   EventKind = "RESUME" // resumed
	EventReset    EventKind = "RESET"
	EventShutdown EventKind = "SHUTDOWN"
)

// Event is a lifecycle event reported to OnEvent.
type Event struct {
	Kind EventKind
	Time time.Time
	// Guest is true when the guest caused the event (reset, shutdown).
	Guest  bool
	Reason string
}

// ErrState is returned for an action the current state does not allow.
var ErrState = errors.New("invalid in the current VM state")

type actionKind int

const (
	actPause actionKind = iota
	actResume
	actReset
	actStop
	actPowerdown
)

type action struct {
	kind  actionKind
	reply chan error
}

// Controller runs one VM: it owns the state machine, and every request
// (CLI signal, API call) reaches it as a typed action on one channel.
type Controller struct {
	cfg     Config
	sys     *kvm.System
	actions chan action
	state   atomic.Int32
	serial  atomic.Pointer[legacy.Serial]
	machine atomic.Pointer[Machine]
	// OnEvent, if set before Run, receives lifecycle events.
	OnEvent func(Event)
	resets  int
	bus     eventBus // Subscribe's subscribers
}

// NewController validates cfg and opens /dev/kvm.
func NewController(cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkHostMemory(cfg.MemoryBytes); err != nil {
		return nil, err
	}
	sys, err := kvm.Open()
	if err != nil {
		return nil, err
	}
	return &Controller{cfg: cfg, sys: sys, actions: make(chan action)}, nil
}

// State returns the current lifecycle state.
func (c *Controller) State() State { return State(c.state.Load()) }

// Resets is the number of guest resets so far (valid after Run returns).
func (c *Controller) Resets() int { return c.resets }

// Machine returns the current machine, or nil before it is built.
func (c *Controller) Machine() *Machine { return c.machine.Load() }

// ConsoleInput delivers host bytes to the guest's console; it returns the
// number accepted (fewer when the UART's buffer is full).
func (c *Controller) ConsoleInput(p []byte) int {
	s := c.serial.Load()
	if s == nil {
		return 0
	}
	return s.Enqueue(p)
}

func (c *Controller) do(k actionKind) error {
	a := action{kind: k, reply: make(chan error, 1)}
	select {
	case c.actions <- a:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("vmm: controller is not answering")
	}
	return <-a.reply
}

// Pause pauses all vCPUs.
func (c *Controller) Pause() error { return c.do(actPause) }

// Resume resumes a paused VM.
func (c *Controller) Resume() error { return c.do(actResume) }

// Reset resets the VM as a hardware reset would.
func (c *Controller) Reset() error { return c.do(actReset) }

// Stop ends the VM; Run returns nil.
func (c *Controller) Stop() error { return c.do(actStop) }

func (c *Controller) emit(k EventKind, guest bool, reason string) {
	ev := Event{Kind: k, Time: time.Now(), Guest: guest, Reason: reason}
	if c.OnEvent != nil {
		c.OnEvent(ev)
	}
	c.bus.publish(ev)
}

// Run builds and runs the VM until it ends: guest power-off, a guest reset
// under NoReboot, Stop, or ctx cancellation all return nil; a VMM or guest
// error (emulation failure, triple fault under NoReboot is not an error)
// returns it. A guest reset otherwise rebuilds the machine and continues.
func (c *Controller) Run(ctx context.Context) error {
	defer c.sys.Close()
	defer c.state.Store(int32(StateStopped))
	for {
		m, err := newMachine(c.sys, c.cfg)
		if err != nil {
			return err
		}
		c.machine.Store(m)
		c.serial.Store(m.serial)
		if err := m.Resume(); err != nil {
			m.Close()
			return err
		}
		c.state.Store(int32(StateRunning))
		c.emit(EventStart, false, "")
		again, err := c.loop(ctx, m)
		c.serial.Store(nil)
		m.Close()
		if err != nil || !again {
			return err
		}
		c.resets++
	}
}

// loop serves one machine; it reports whether to rebuild it (guest reset).
func (c *Controller) loop(ctx context.Context, m *Machine) (reset bool, err error) {
	guestReset := func(why string) (bool, error) {
		c.emit(EventReset, true, why)
		if c.cfg.NoReboot {
			c.emit(EventShutdown, true, "guest-reset")
			return false, nil
		}
		return true, nil
	}
	for {
		select {
		case <-ctx.Done():
			c.emit(EventShutdown, false, "host-signal")
			return false, nil
		case <-m.reset:
			return guestReset("i8042 reset")
		case ev := <-m.events:
			switch ev.Kind {
			case vcpu.ExitReset:
				why := "guest reset"
				if ev.Err != nil {
					why = ev.Err.Error()
					m.log.Info("guest reset", "reason", why)
				}
				return guestReset(why)
			case vcpu.ExitShutdown:
				c.emit(EventShutdown, true, "guest-shutdown")
				return false, nil
			case vcpu.ExitStopped:
				continue
			default:
				return false, ev.Err
			}
		case a := <-c.actions:
			r, stop, err := c.act(m, a)
			a.reply <- err
			if stop {
				return r, nil
			}
		}
	}
}

// act applies one action; stop reports that the machine must end, and
// reset whether it is rebuilt.
func (c *Controller) act(m *Machine, a action) (reset, stop bool, err error) {
	st := c.State()
	switch a.kind {
	case actPause:
		if st != StateRunning {
			return false, false, fmt.Errorf("cannot pause: VM is %s: %w", st, ErrState)
		}
		if err := m.Pause(); err != nil {
			return false, false, err
		}
		c.state.Store(int32(StatePaused))
		c.emit(EventStop, false, "")
	case actResume:
		if st != StatePaused {
			return false, false, fmt.Errorf("cannot resume: VM is %s: %w", st, ErrState)
		}
		if err := m.Resume(); err != nil {
			return false, false, err
		}
		c.state.Store(int32(StateRunning))
		c.emit(EventResume, false, "")
	case actReset:
		c.emit(EventReset, false, "host-qmp-system-reset")
		return true, true, nil
	case actStop:
		c.emit(EventShutdown, false, "host-qmp-quit")
		return false, true, nil
	case actPowerdown:
		return false, false, c.powerdown(m)
	}
	return false, false, nil
}
