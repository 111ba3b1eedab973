package vmm

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

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
	// BalloonActual is BALLOON_CHANGE's guest memory in bytes.
	BalloonActual uint64
	// Pass is MIGRATION_PASS's pass number (migrate.go).
	Pass int
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
	actDo
)

type action struct {
	kind  actionKind
	fn    func(*Machine) error // actDo
	reply chan error
}

// Controller runs one VM: it owns the state machine, and every request
// (CLI signal, API call) reaches it as a typed action on one channel.
type Controller struct {
	cfg     Config
	sys     *kvm.System
	actions chan action
	state   atomic.Int32
	input   atomic.Pointer[consoleInput]
	machine atomic.Pointer[Machine]
	// OnEvent, if set before Run, receives lifecycle events.
	OnEvent func(Event)
	resets  int
	restore *restoreFrom // the snapshot the first machine is restored from
	bus     eventBus     // Subscribe's subscribers
	mig     migrations   // live migration, both sides (migrate.go)
}

// NewController validates cfg and opens /dev/kvm.
func NewController(cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var from *restoreFrom
	if cfg.RestoreDir != "" || cfg.RestoreFiles != nil {
		snap, mem, err := loadRestore(&cfg)
		if err != nil {
			return nil, err
		}
		from = &restoreFrom{snap: snap, mem: mem}
		cfg = configFromSnapshot(cfg, snap)
	}
	if err := checkHostMemory(cfg.MemoryBytes); err != nil {
		from.close()
		return nil, err
	}
	sys, err := kvm.Open()
	if err != nil {
		from.close()
		return nil, err
	}
	return &Controller{cfg: cfg, sys: sys, actions: make(chan action), restore: from}, nil
}

// State returns the current lifecycle state.
func (c *Controller) State() State { return State(c.state.Load()) }

// Resets is the number of guest resets so far (valid after Run returns).
func (c *Controller) Resets() int { return c.resets }

// Machine returns the current machine, or nil before it is built.
func (c *Controller) Machine() *Machine { return c.machine.Load() }

// consoleInput holds the current machine's console input sink.
type consoleInput struct{ sink inputSink }

// ConsoleInput delivers host bytes to the guest's console (the UART, or
// the virtio console with VirtioConsole); it returns the number accepted
// (fewer when the console's input buffer is full).
func (c *Controller) ConsoleInput(p []byte) int {
	in := c.input.Load()
	if in == nil {
		return 0
	}
	return in.sink.Enqueue(p)
}

func (c *Controller) do(k actionKind) error { return c.send(action{kind: k}) }

// send hands a to the controller goroutine and waits for its answer.
func (c *Controller) send(a action) error {
	a.reply = make(chan error, 1)
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
	c.publish(Event{Kind: k, Time: time.Now(), Guest: guest, Reason: reason})
}

func (c *Controller) publish(ev Event) {
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
	if stop, err := c.receiveIncoming(ctx); stop || err != nil {
		return err // a migration target whose VM never arrived (migrate_target.go)
	}
	closeChannels, err := c.openChannels()
	if err != nil {
		return err
	}
	defer closeChannels()
	closeNets, err := c.openNets()
	if err != nil {
		return err
	}
	defer closeNets()
	closeDisks, err := c.openDisks()
	if err != nil {
		return err
	}
	defer closeDisks()
	for {
		built := time.Now()
		m, err := buildMachine(c.sys, c.cfg, c.restore)
		c.restore.close() // the mapping keeps the memory file
		c.restore = nil
		err = c.finishIncoming(m, err) // a migration target acknowledges (migrate_target.go)
		if err != nil {
			return err
		}
		c.machine.Store(m)
		c.input.Store(&consoleInput{m.consoleSink()})
		if c.cfg.StartPaused && c.resets == 0 {
			// Built paused (a snapshot loaded without resume): the vCPUs
			// first run at Resume.
			c.state.Store(int32(StatePaused))
			c.emit(EventStart, false, "")
			c.emit(EventStop, false, "")
		} else {
			if err := m.Resume(); err != nil {
				m.Close()
				return err
			}
			c.state.Store(int32(StateRunning))
			m.logStarted(time.Since(built)) // snapshot_fc.go
			c.emit(EventStart, false, "")
		}
		again, err := c.loop(ctx, m)
		c.input.Store(nil)
		c.stopMigration(!again || err != nil) // the sender lets go of m (migrate.go)
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
	balloonChanges := m.balloonChanges()
	for {
		select {
		case <-balloonChanges:
			c.balloonChanged(m)
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
		if err := c.beforeResume(m); err != nil { // after a migration (migrate.go)
			return false, false, err
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
	case actDo:
		return false, false, a.fn(m)
	}
	return false, false, nil
}
