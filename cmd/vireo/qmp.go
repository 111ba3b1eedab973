package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/vireo-vmm/vireo/internal/api/qmp"
	"github.com/vireo-vmm/vireo/internal/kvm"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// qmpSpecs is --qmp, which may be given several times.
type qmpSpecs []qmp.Spec

func (q *qmpSpecs) String() string {
	s := make([]string, len(*q))
	for i, sp := range *q {
		s[i] = sp.String()
	}
	return strings.Join(s, " ")
}

func (q *qmpSpecs) Set(arg string) error {
	sp, err := qmp.ParseSpec(arg)
	if err != nil {
		return err
	}
	*q = append(*q, sp)
	return nil
}

// runWithQMP runs the VM as ctl.Run does, serving QMP on every spec while
// it runs. A spec with wait=on holds the boot until a client connects.
// When the VM ends, replies in flight (quit's) are delivered before the
// sockets close.
func runWithQMP(ctx context.Context, ctl *vmm.Controller, specs qmpSpecs, log *slog.Logger) error {
	if len(specs) == 0 {
		return ctl.Run(ctx)
	}
	srv := qmp.NewServer(qmpMachine{ctl}, qmp.Options{Package: "vireo-" + version, Log: log})
	defer srv.Close()
	listeners := make([]net.Listener, 0, len(specs))
	for _, sp := range specs {
		l, err := sp.Listen()
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		listeners = append(listeners, l)
	}
	for i, l := range listeners {
		if specs[i].Wait {
			log.Info("waiting for a QMP client", "socket", specs[i].String())
			c, err := acceptFirst(ctx, l)
			if err != nil {
				for _, l := range listeners[i:] {
					l.Close()
				}
				if ctx.Err() != nil {
					return nil // interrupted before the VM started
				}
				return fmt.Errorf("qmp: %w", err)
			}
			go srv.ServeConn(c)
		}
		go func(sp qmp.Spec) {
			if err := srv.Serve(l); err != nil && !errors.Is(err, qmp.ErrServerClosed) {
				log.Error("QMP server stopped", "socket", sp.String(), "err", err)
			}
		}(specs[i])
	}
	err := ctl.Run(ctx)
	if cerr := srv.Close(); cerr != nil {
		log.Debug("closing QMP sockets", "err", cerr)
	}
	return err
}

// acceptFirst waits for one connection on l, or for ctx to end.
func acceptFirst(ctx context.Context, l net.Listener) (net.Conn, error) {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	return l.Accept()
}

// qmpMachine adapts the VM controller to the QMP server.
type qmpMachine struct{ ctl *vmm.Controller }

func (m qmpMachine) Status() qmp.RunState {
	switch m.ctl.State() {
	case vmm.StateCreated:
		if m.ctl.Incoming() {
			return qmp.StateInMigrate
		}
		return qmp.StatePrelaunch
	case vmm.StateRunning:
		return qmp.StateRunning
	case vmm.StatePaused:
		if m.ctl.Migrated() {
			return qmp.StatePostMigrate
		}
		return qmp.StatePaused
	}
	return qmp.StateShutdown
}

// Pause and Resume succeed when the VM is already where they would put
// it, as QEMU's stop and cont do.
func (m qmpMachine) Pause() error {
	return m.act(func() error {
		err := m.ctl.Pause()
		if errors.Is(err, vmm.ErrState) && m.ctl.State() == vmm.StatePaused {
			return nil
		}
		return err
	})
}

func (m qmpMachine) Resume() error {
	return m.act(func() error {
		err := m.ctl.Resume()
		if errors.Is(err, vmm.ErrState) && m.ctl.State() == vmm.StateRunning {
			return nil
		}
		return err
	})
}

func (m qmpMachine) Reset() error { return m.act(m.ctl.Reset) }
func (m qmpMachine) Snapshot(dir string) error {
	return m.act(func() error { return m.ctl.Snapshot(dir) })
}
func (m qmpMachine) Powerdown() error { return m.act(m.ctl.Powerdown) }

// Quit on a VM that has already ended has nothing left to do.
func (m qmpMachine) Quit() error {
	if m.ctl.State() == vmm.StateStopped {
		return nil
	}
	return qmpError(m.ctl.Stop())
}

// act runs a controller action, refusing at once when the VM has ended
// and its controller takes no more actions.
func (m qmpMachine) act(f func() error) error {
	if m.ctl.State() == vmm.StateStopped {
		return qmp.NewError(qmp.ClassGeneric, "The VM has shut down")
	}
	return qmpError(f())
}

func (m qmpMachine) MemorySize() uint64 { return m.ctl.MemoryBytes() }

func (m qmpMachine) CPUs() []qmp.CPU {
	vcpus := m.ctl.VCPUs()
	out := make([]qmp.CPU, len(vcpus))
	for i, v := range vcpus {
		// Every vCPU is a core of socket 0 (x86.Topology's default).
		out[i] = qmp.CPU{Index: v.Index, ThreadID: v.ThreadID, Core: v.Index}
	}
	return out
}

func (m qmpMachine) KVMStats(target string) ([]qmp.StatsSet, error) {
	sets, err := m.ctl.KVMStats(target == "vcpu")
	if err != nil {
		return nil, err
	}
	out := make([]qmp.StatsSet, len(sets))
	for i, s := range sets {
		out[i] = qmp.StatsSet{VCPU: s.VCPU, Stats: s.Stats}
	}
	return out, nil
}

func (m qmpMachine) Blocks() []qmp.BlockDevice {
	devs := m.ctl.BlockDevices()
	out := make([]qmp.BlockDevice, len(devs))
	for i, d := range devs {
		out[i] = qmp.BlockDevice{Device: d.ID, File: d.Path, Format: d.Format, ReadOnly: d.ReadOnly, Size: d.Size, Cache: d.Cache}
	}
	return out
}

func (m qmpMachine) Balloon() (uint64, error) {
	n, err := m.ctl.BalloonBytes()
	return n, qmpError(err)
}

func (m qmpMachine) SetBalloon(target uint64) error {
	return qmpError(m.ctl.SetBalloonTarget(target))
}

func (m qmpMachine) Subscribe(fn func(qmp.Event)) func() {
	return m.ctl.Subscribe(func(ev vmm.Event) {
		if qe, ok := qmpEvent(ev); ok {
			fn(qe)
		}
	})
}

// qmpError gives VMM errors the QMP class QEMU would use.
func qmpError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, vmm.ErrNoBalloon):
		return qmp.ErrNoBalloon
	case errors.Is(err, kvm.ErrMissingCap):
		return qmp.NewError(qmp.ClassKVMMissingCap, "%s", err.Error())
	}
	return err
}

// shutdownCauses are QEMU's names for why a VM shut down or reset.
var shutdownCauses = map[string]bool{
	"host-error": true, "host-qmp-quit": true, "host-qmp-system-reset": true, "host-signal": true,
	"host-ui": true, "guest-shutdown": true, "guest-reset": true, "guest-panic": true,
	"subsystem-reset": true, "snapshot-load": true,
}

// qmpEvent translates a lifecycle event; events QMP has no name for
// (the VM's start) are not sent.
func qmpEvent(ev vmm.Event) (qmp.Event, bool) {
	out := qmp.Event{Name: string(ev.Kind), Time: ev.Time}
	switch ev.Kind {
	case vmm.EventStop, vmm.EventResume, vmm.EventPowerdown:
	case vmm.EventBalloonChange:
		out.Data = balloonChangeData{Actual: ev.BalloonActual}
	case vmm.EventMigration:
		out.Data = qmp.MigrationEventData{Status: ev.Reason}
	case vmm.EventMigrationPass:
		out.Data = qmp.MigrationPassEventData{Pass: ev.Pass}
	case vmm.EventReset, vmm.EventShutdown:
		reason := ev.Reason
		if !shutdownCauses[reason] {
			// The VMM's own words (say, "i8042 reset") become QEMU's cause.
			switch {
			case ev.Guest && ev.Kind == vmm.EventReset:
				reason = "guest-reset"
			case ev.Guest:
				reason = "guest-shutdown"
			default:
				reason = "host-error"
			}
		}
		out.Data = qmp.ShutdownData{Guest: ev.Guest, Reason: reason}
	default:
		return qmp.Event{}, false
	}
	return out, true
}
