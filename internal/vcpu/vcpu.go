// Package vcpu runs one KVM vCPU on its own locked OS thread.
//
// Each vCPU is a goroutine that calls runtime.LockOSThread first and never
// unlocks, creates its KVM vCPU on that thread and runs it there. Other
// goroutines talk to it only through control messages; a kick makes a
// message impossible to lose: the message is queued first, then
// kvm_run.immediate_exit is set, then the thread is signalled. KVM_RUN
// returning EINTR is never retried blindly: it goes back to the loop, which
// reads its messages.
package vcpu

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/vireo-vmm/vireo/internal/bus"
	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/kvm"
	"github.com/vireo-vmm/vireo/internal/metrics"
)

// ExitKind classifies why a vCPU stopped running guest code for good.
type ExitKind int

const (
	// ExitStopped: the vCPU was told to stop.
	ExitStopped ExitKind = iota
	// ExitReset: the guest asked for a reset (triple fault, KVM system
	// event, or a reset device such as the i8042).
	ExitReset
	// ExitShutdown: the guest powered off.
	ExitShutdown
	// ExitError: an unrecoverable error (emulation failure, entry failure).
	ExitError
)

func (k ExitKind) String() string {
	switch k {
	case ExitStopped:
		return "stopped"
	case ExitReset:
		return "reset"
	case ExitShutdown:
		return "shutdown"
	case ExitError:
		return "error"
	}
	return fmt.Sprintf("ExitKind(%d)", int(k))
}

// Event is reported by a vCPU to its owner when it leaves the run loop.
type Event struct {
	ID   int
	Kind ExitKind
	Err  error
}

// Config describes one vCPU.
type Config struct {
	ID   int
	VM   *kvm.VM
	PIO  *bus.Bus
	MMIO *bus.Bus
	// Setup runs on the vCPU's thread right after creation, before the
	// first KVM_RUN: CPUID, registers, MSRs, or restored state.
	Setup func(c *kvm.VCPU) error
	// Events receives the vCPU's final event. It must be buffered or drained.
	Events chan<- Event
	Log    *slog.Logger
	// Mem, when set, lets error reports include the instruction bytes at
	// RIP when KVM does not supply them.
	Mem *guestmem.Memory
}

type msgKind int

const (
	msgPause msgKind = iota
	msgResume
	msgStop
	msgDo
)

type msg struct {
	kind msgKind
	fn   func(c *kvm.VCPU) error
	done chan error
}

// ErrNotRunning is returned for requests to a vCPU whose loop has ended.
var ErrNotRunning = errors.New("vcpu: not running")

// VCPU is a running vCPU thread.
type VCPU struct {
	cfg    Config
	ctrl   chan msg
	tid    atomic.Int32
	cpu    *kvm.VCPU // set once on the vCPU thread before ready is closed
	ready  chan error
	exited chan struct{}
	once   sync.Once
	stats  Stats
	// life guards cpu against a kick racing with the thread closing it:
	// kick holds it shared; the thread takes it exclusively to close.
	life   sync.RWMutex
	closed bool
	// kstats is KVM's statistics file for the vCPU (nil when the host
	// has none); set before ready is closed, closed when the thread ends.
	kstats *kvm.Stats
}

// Stats counts exits by kind. Fields are updated atomically by the vCPU thread.
type Stats struct {
	IO, MMIO, Intr, HLT, Other metrics.Counter
}

// Exits returns the counts as plain values.
func (s *Stats) Exits() metrics.Exits {
	return metrics.Exits{IO: s.IO.Load(), MMIO: s.MMIO.Load(), HLT: s.HLT.Load(), Intr: s.Intr.Load(), Other: s.Other.Load()}
}

// Start creates the vCPU on a new locked thread and starts it paused or
// running. It returns once the vCPU exists and Setup has run.
func Start(cfg Config, paused bool) (*VCPU, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	v := &VCPU{
		cfg:    cfg,
		ctrl:   make(chan msg, 8),
		ready:  make(chan error, 1),
		exited: make(chan struct{}),
	}
	go v.loop(paused)
	if err := <-v.ready; err != nil {
		<-v.exited
		return nil, err
	}
	return v, nil
}

// ID is the vCPU index.
func (v *VCPU) ID() int { return v.cfg.ID }

// Stats returns the exit counters.
func (v *VCPU) Stats() *Stats { return &v.stats }

// ErrNoStats is returned by KVMStats when the host's KVM offers no
// binary statistics (KVM_CAP_BINARY_STATS_FD, Linux 5.14).
var ErrNoStats = errors.New("vcpu: KVM has no binary statistics")

// KVMStats reads KVM's own statistics of the vCPU: exits by kind,
// emulated instructions, injected interrupts, halt polling, ... Any
// goroutine may call it; after the vCPU has ended it fails.
func (v *VCPU) KVMStats() ([]kvm.Stat, error) {
	if v.kstats == nil {
		return nil, ErrNoStats
	}
	return v.kstats.ReadAll()
}

// Done is closed when the vCPU thread has ended and its KVM vCPU is closed.
func (v *VCPU) Done() <-chan struct{} { return v.exited }

// send queues m and kicks the vCPU out of the guest.
func (v *VCPU) send(m msg) error {
	select {
	case <-v.exited:
		return ErrNotRunning
	default:
	}
	select {
	case v.ctrl <- m:
	case <-v.exited:
		return ErrNotRunning
	}
	v.kick()
	return nil
}

func (v *VCPU) request(kind msgKind, fn func(*kvm.VCPU) error) error {
	m := msg{kind: kind, fn: fn, done: make(chan error, 1)}
	if err := v.send(m); err != nil {
		return err
	}
	select {
	case err := <-m.done:
		return err
	case <-v.exited:
		return ErrNotRunning
	}
}

// kick makes a running KVM_RUN return: immediate_exit first, then a signal
// to the thread (the signal only matters while it is inside the guest).
func (v *VCPU) kick() {
	v.life.RLock()
	defer v.life.RUnlock()
	if v.closed || v.cpu == nil {
		return
	}
	v.cpu.RunData().Kick()
	hostos.Tgkill(int(v.tid.Load()), hostos.KickSignal)
}

// Pause stops the vCPU outside guest mode and returns once it is parked.
func (v *VCPU) Pause() error { return v.request(msgPause, nil) }

// Resume lets a paused vCPU run again.
func (v *VCPU) Resume() error { return v.request(msgResume, nil) }

// Do runs fn on the vCPU thread while the vCPU is outside the guest (for
// state save and restore). Pause the vCPU first for a consistent view.
func (v *VCPU) Do(fn func(c *kvm.VCPU) error) error { return v.request(msgDo, fn) }

// Stop ends the vCPU loop and waits for the thread to finish.
func (v *VCPU) Stop() {
	v.once.Do(func() {
		if err := v.send(msg{kind: msgStop}); err != nil {
			return
		}
	})
	<-v.exited
}

func (v *VCPU) loop(paused bool) {
	// The thread is never unlocked: it ends with the goroutine, taking any
	// per-thread KVM state with it.
	runtime.LockOSThread()
	defer close(v.exited)
	v.tid.Store(int32(hostos.Gettid()))

	cpu, err := v.cfg.VM.CreateVCPU(v.cfg.ID)
	if err != nil {
		v.ready <- err
		return
	}
	if st, err := cpu.StatsFD(); err == nil {
		v.kstats = st
	} else {
		v.cfg.Log.Debug("no KVM statistics for the vCPU", "vcpu", v.cfg.ID, "err", err)
	}
	defer func() {
		v.life.Lock()
		v.closed = true
		if v.kstats != nil {
			v.kstats.Close()
		}
		cpu.Close()
		v.life.Unlock()
	}()
	v.life.Lock()
	v.cpu = cpu
	v.life.Unlock()
	if err := cpu.SetSignalMask(hostos.RunSignalMask()); err != nil {
		v.ready <- err
		return
	}
	if v.cfg.Setup != nil {
		if err := v.cfg.Setup(cpu); err != nil {
			v.ready <- fmt.Errorf("vCPU %d setup: %w", v.cfg.ID, err)
			return
		}
	}
	v.ready <- nil

	ev := v.run(cpu, paused)
	// Report, then keep answering requests until told to stop, so the
	// owner can still save state or pause all vCPUs uniformly.
	if v.cfg.Events != nil {
		v.cfg.Events <- ev
	}
	if ev.Kind == ExitStopped {
		return
	}
	for m := range v.ctrl {
		if v.handle(cpu, m, &paused) {
			return
		}
	}
}

// handle processes one control message and reports whether to stop.
func (v *VCPU) handle(cpu *kvm.VCPU, m msg, paused *bool) (stop bool) {
	var err error
	switch m.kind {
	case msgPause:
		*paused = true
	case msgResume:
		*paused = false
	case msgStop:
		return true
	case msgDo:
		err = m.fn(cpu)
	}
	if m.done != nil {
		m.done <- err
	}
	return false
}

// run is the hot loop. It returns the event that ends guest execution. A
// panic in device emulation called from the exit path is a VMM bug; it is
// caught here and reported as an error event, so the VMM shuts down with
// one clear message instead of a crash.
func (v *VCPU) run(cpu *kvm.VCPU, paused bool) (ev Event) {
	defer func() {
		if r := recover(); r != nil {
			v.cfg.Log.Error("panic in vCPU exit handling", "vcpu", v.cfg.ID, "panic", r, "stack", string(debug.Stack()))
			ev = Event{ID: v.cfg.ID, Kind: ExitError, Err: fmt.Errorf("vCPU %d: internal error while emulating a device access: %v", v.cfg.ID, r)}
		}
	}()
	run := cpu.RunData()
	id := v.cfg.ID
	for {
		// Drain control messages; block while paused.
	drain:
		for {
			var m msg
			if paused {
				m = <-v.ctrl
			} else {
				select {
				case m = <-v.ctrl:
				default:
					break drain
				}
			}
			if v.handle(cpu, m, &paused) {
				return Event{ID: id, Kind: ExitStopped}
			}
		}

		err := cpu.Run()
		// Writes KVM buffered (coalesced MMIO) take effect before this
		// exit is handled, in the order the guest made them.
		cpu.DrainCoalesced(v.cfg.MMIO, v.cfg.PIO)
		if err != nil {
			if errors.Is(err, kvm.ErrInterrupted) {
				run.ClearKick()
				v.stats.Intr.Add(1)
				continue
			}
			return Event{ID: id, Kind: ExitError, Err: fmt.Errorf("vCPU %d: KVM_RUN: %w", id, err)}
		}
		switch reason := run.ExitReason(); reason {
		case kvm.ExitIO:
			v.stats.IO.Add(1)
			dir, port, size, data, ok := run.IO()
			if !ok {
				return Event{ID: id, Kind: ExitError, Err: fmt.Errorf("vCPU %d: port I/O exit with a data buffer outside kvm_run", id)}
			}
			for i := 0; i+size <= len(data) && size > 0; i += size {
				if dir == kvm.ExitIOOut {
					v.cfg.PIO.Write(uint64(port), data[i:i+size])
				} else {
					v.cfg.PIO.Read(uint64(port), data[i:i+size])
				}
			}
		case kvm.ExitMMIO:
			v.stats.MMIO.Add(1)
			addr, data, isWrite := run.MMIO()
			if isWrite {
				v.cfg.MMIO.Write(addr, data)
			} else {
				v.cfg.MMIO.Read(addr, data)
			}
		case kvm.ExitIntr:
			v.stats.Intr.Add(1)
		case kvm.ExitHLT:
			// Only reached without an in-kernel irqchip: nothing can wake us.
			v.stats.HLT.Add(1)
			return Event{ID: id, Kind: ExitShutdown}
		case kvm.ExitShutdown:
			// Triple fault: a PC resets.
			return Event{ID: id, Kind: ExitReset, Err: fmt.Errorf("vCPU %d: triple fault%s", id, describeRIP(cpu))}
		case kvm.ExitSystemEvent:
			switch run.SystemEvent() {
			case kvm.SystemEventReset:
				return Event{ID: id, Kind: ExitReset}
			case kvm.SystemEventShutdown:
				return Event{ID: id, Kind: ExitShutdown}
			default:
				return Event{ID: id, Kind: ExitError, Err: fmt.Errorf("vCPU %d: guest crash system event%s", id, describeRIP(cpu))}
			}
		case kvm.ExitInternalError:
			return Event{ID: id, Kind: ExitError, Err: internalError(cpu, v.cfg.Mem, run.InternalError())}
		case kvm.ExitFailEntry:
			r, hwcpu := run.FailEntry()
			return Event{ID: id, Kind: ExitError, Err: fmt.Errorf("vCPU %d: VM entry failed (hardware reason %#x on host CPU %d)%s", id, r, hwcpu, describeRIP(cpu))}
		default:
			v.stats.Other.Add(1)
			return Event{ID: id, Kind: ExitError, Err: fmt.Errorf("vCPU %d: unhandled KVM exit reason %d%s", id, reason, describeRIP(cpu))}
		}
	}
}
