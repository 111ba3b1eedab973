package vmm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/migration"
	"github.com/vireo-vmm/vireo/internal/snapshot"
)

// Live migration, source side.
//
// Controller.Migrate starts a pre-copy migration on its own goroutine
// (internal/migration's Sender): all of RAM while the VM runs, then the
// pages written meanwhile, pass after pass, until what is left fits in
// the downtime limit. Then, on the controller goroutine, the VM is paused,
// its devices quiesced, the last pages and the device state (the
// snapshot document without memory) sent, and the target's
// acknowledgement awaited. On success the source stays paused with its
// devices stopped, as QEMU's source does ("postmigrate"): the user quits
// it, or resumes it (which restarts the devices). On any failure the VM
// runs on as before and the migration is "failed" or "cancelled".
//
// The sender reads guest memory outside the controller goroutine; the
// controller cancels and waits for it (stopMigration) before it closes
// a machine, so memory is never unmapped under it. MIGRATION and
// MIGRATION_PASS events are published from the sender's goroutine, not
// the controller's (subscribers must be safe for that, as QMP's is).

// Migration event kinds (QEMU's MIGRATION and MIGRATION_PASS).
const (
	// EventMigration reports a migration status change; Reason holds
	// the status ("setup", "active", "completed", "failed", "cancelled").
	EventMigration EventKind = "MIGRATION"
	// EventMigrationPass reports a RAM pass done; Pass holds its number.
	EventMigrationPass EventKind = "MIGRATION_PASS"
)

// Migration errors.
var (
	ErrMigration       = errors.New("migration")
	ErrMigrationActive = fmt.Errorf("%w: a migration is already in progress", ErrMigration)
	errVMReset         = fmt.Errorf("%w: the VM was reset during the migration", ErrMigration)
	errVMEnded         = fmt.Errorf("%w: the VM ended during the migration", ErrMigration)
	errMachineChanged  = fmt.Errorf("%w: the VM was rebuilt during the migration", ErrMigration)
)

// cancelTimeout bounds how long MigrateCancel waits for the sender.
const cancelTimeout = 10 * time.Second

// migrations is a controller's migration state (the Controller field mig).
type migrations struct {
	mu     sync.Mutex
	params migration.Params
	sender *migration.Sender // the running or last outgoing migration
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the sender's goroutine ends
	ended  bool          // the VM has ended: no more migrations
	// postmigrate: a completed migration left the VM paused with its
	// devices quiesced; resuming the VM restarts them.
	postmigrate bool
	// incoming is the target side (migrate_target.go), nil on a source.
	incoming *incoming
}

// paramsLocked returns the parameters for the next migration (mg.mu held).
func (mg *migrations) paramsLocked() migration.Params {
	if mg.params == (migration.Params{}) {
		mg.params = migration.DefaultParams()
	}
	return mg.params
}

// MigrationParams returns the migration parameters.
func (c *Controller) MigrationParams() migration.Params {
	c.mig.mu.Lock()
	defer c.mig.mu.Unlock()
	return c.mig.paramsLocked()
}

// SetMigrationParams changes the migration parameters, for the running
// migration too.
func (c *Controller) SetMigrationParams(p migration.Params) error {
	if err := p.Check(); err != nil {
		return err
	}
	c.mig.mu.Lock()
	defer c.mig.mu.Unlock()
	c.mig.params = p
	if c.mig.sender != nil && c.mig.done != nil {
		return c.mig.sender.SetParams(p)
	}
	return nil
}

// MigrationInfo returns the progress of the running or last migration
// (outgoing, or incoming on a target); Status is "none" before any.
func (c *Controller) MigrationInfo() migration.Info {
	c.mig.mu.Lock()
	s, in := c.mig.sender, c.mig.incoming
	c.mig.mu.Unlock()
	if s != nil {
		info := s.Info()
		if info.Status == migration.StatusNone {
			info.Status = migration.StatusSetup // requested, not started yet
		}
		return info
	}
	if in != nil {
		return in.info()
	}
	return migration.Info{Status: migration.StatusNone}
}

// Migrated reports whether a completed migration left the VM paused
// (QEMU's "postmigrate" run state).
func (c *Controller) Migrated() bool {
	c.mig.mu.Lock()
	defer c.mig.mu.Unlock()
	return c.mig.postmigrate
}

// Migrate starts migrating the running VM to a target listening on uri
// ("tcp:HOST:PORT" or "unix:PATH") and returns at once; MIGRATION events
// and MigrationInfo report the progress.
func (c *Controller) Migrate(uri string) error {
	u, err := migration.ParseURI(uri)
	if err != nil {
		return err
	}
	if st := c.State(); st != StateRunning && st != StatePaused {
		return fmt.Errorf("%w: the VM is %s", ErrMigration, st)
	}
	c.mig.mu.Lock()
	defer c.mig.mu.Unlock()
	switch {
	case c.mig.incoming != nil && c.mig.incoming.info().Status != migration.StatusCompleted:
		return fmt.Errorf("%w: this VM is waiting for an incoming migration", ErrMigration)
	case c.mig.ended:
		return fmt.Errorf("%w: the VM has ended", ErrMigration)
	case c.mig.sender != nil && !c.mig.sender.Info().Status.Done():
		return ErrMigrationActive
	case c.mig.postmigrate:
		return fmt.Errorf("%w: the VM was migrated already; resume it (cont) to migrate it again", ErrMigration)
	}
	s, err := migration.NewSender(c.mig.paramsLocked())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan struct{})
	c.mig.sender, c.mig.cancel, c.mig.done = s, cancel, done
	go c.runMigration(ctx, s, u, done)
	return nil
}

// runMigration is the sender's goroutine.
func (c *Controller) runMigration(ctx context.Context, s *migration.Sender, u migration.URI, done chan struct{}) {
	defer func() {
		c.mig.mu.Lock()
		if c.mig.done == done {
			c.mig.cancel(nil)
			c.mig.cancel, c.mig.done = nil, nil
		}
		c.mig.mu.Unlock()
		close(done)
	}()
	hooks := migration.Hooks{
		Status: func(st migration.Status) {
			c.publish(Event{Kind: EventMigration, Time: time.Now(), Reason: string(st)})
		},
		Pass: func(n int) {
			c.publish(Event{Kind: EventMigrationPass, Time: time.Now(), Pass: n})
		},
	}
	// The machine is pinned through the controller: stopMigration runs
	// before the controller lets go of it.
	var m *Machine
	if err := c.doCtx(ctx, func(cur *Machine) error { m = cur; return nil }); err != nil {
		s.Abort(err, hooks)
		return
	}
	err := s.Run(ctx, u, &migrationSource{c: c, m: m, ctx: ctx}, hooks)
	switch {
	case err == nil:
		info := s.Info()
		m.log.Info("migration completed", "to", u.String(), "total", info.TotalTime.Round(time.Millisecond),
			"downtime", info.Downtime.Round(100*time.Microsecond), "passes", info.RAM.Passes,
			"downtime_bytes", info.RAM.DowntimeBytes, "final_write", info.FinalWrite.Round(10*time.Microsecond))
	case errors.Is(err, migration.ErrCancelled):
		m.log.Info("migration cancelled", "to", u.String())
	default:
		m.log.Warn("migration failed; the VM keeps running", "to", u.String(), "err", err)
	}
}

// MigrateCancel cancels a running migration and waits for the VM to run
// as before. Without a migration it does nothing.
func (c *Controller) MigrateCancel() error {
	c.mig.mu.Lock()
	cancel, done := c.mig.cancel, c.mig.done
	c.mig.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel(context.Canceled)
	select {
	case <-done:
		return nil
	case <-time.After(cancelTimeout):
		return fmt.Errorf("%w: cancelling: the migration did not stop within %v", ErrMigration, cancelTimeout)
	}
}

// stopMigration ends a running migration before the controller closes
// its machine: a guest reset (ended false) or the end of the VM. It runs
// on the controller goroutine.
func (c *Controller) stopMigration(ended bool) {
	c.mig.mu.Lock()
	cancel, done := c.mig.cancel, c.mig.done
	c.mig.postmigrate = false
	if ended {
		c.mig.ended = true
	}
	c.mig.mu.Unlock()
	if done == nil {
		return
	}
	cause := errVMReset
	if ended {
		cause = errVMEnded
	}
	cancel(cause)
	<-done
}

// beforeResume restarts the devices a completed migration left stopped,
// when the VM is resumed after all. It runs on the controller goroutine.
func (c *Controller) beforeResume(m *Machine) error {
	c.mig.mu.Lock()
	post := c.mig.postmigrate
	c.mig.postmigrate = false
	c.mig.mu.Unlock()
	if !post {
		return nil
	}
	return m.resumeDevices()
}

// doCtx runs fn on the controller goroutine like Do, giving up if ctx
// ends before the controller takes the action.
func (c *Controller) doCtx(ctx context.Context, fn func(*Machine) error) error {
	a := action{kind: actDo, fn: fn, reply: make(chan error, 1)}
	select {
	case c.actions <- a:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	return <-a.reply
}

// migrationSource is the running machine as the sender sees it.
type migrationSource struct {
	c   *Controller
	m   *Machine
	ctx context.Context
}

func (s *migrationSource) Memory() *guestmem.Memory { return s.m.mem }

// Describe is the Setup record's machine description: the snapshot
// configuration, from which the target sizes its memory.
func (s *migrationSource) Describe() ([]byte, error) {
	return json.Marshal(snapshotConfig(&s.m.cfg))
}

func (s *migrationSource) StartDirtyLog() error { return s.m.StartDirtyTracking() }

func (s *migrationSource) CollectDirty(b [][]uint64) error { return s.m.CollectDirty(b) }

func (s *migrationSource) StopDirtyLog() {
	if err := s.m.StopDirtyTracking(); err != nil {
		s.m.log.Warn("turning dirty logging off", "err", err)
	}
}

// Finish runs the stop-and-copy phase on the controller goroutine.
func (s *migrationSource) Finish(b [][]uint64, send func([]byte) error) error {
	return s.c.doCtx(s.ctx, func(cur *Machine) error {
		if cur != s.m {
			return errMachineChanged
		}
		return s.c.finishMigration(cur, b, send)
	})
}

// finishMigration pauses the VM, quiesces its devices, completes the
// dirty set b with the last writes and every virtqueue's rings, and
// hands the device state to send. If send fails the VM runs again.
func (c *Controller) finishMigration(m *Machine, b DirtyBitmap, send func([]byte) error) (err error) {
	t0 := time.Now()
	running := c.State() == StateRunning
	if running {
		if err := m.Pause(); err != nil {
			return err
		}
		c.state.Store(int32(StatePaused))
		c.emit(EventStop, false, "")
	}
	for _, t := range m.virtio.transports {
		t.Quiesce()
	}
	defer func() {
		if err == nil {
			c.mig.mu.Lock()
			c.mig.postmigrate = true
			c.mig.mu.Unlock()
			return
		}
		if rerr := m.resumeDevices(); rerr != nil {
			m.log.Error("restarting devices after a failed migration", "err", rerr)
		}
		if running {
			if rerr := m.Resume(); rerr != nil {
				m.log.Error("resuming after a failed migration", "err", rerr)
				return
			}
			c.state.Store(int32(StateRunning))
			c.emit(EventResume, false, "")
		}
	}()
	if err := m.CollectDirty(b); err != nil {
		return err
	}
	t1 := time.Now()
	doc, err := m.deviceState(b, running)
	if err != nil {
		return err
	}
	t2 := time.Now()
	err = send(doc)
	m.log.Debug("migration: final phase", "pause_quiesce_collect", t1.Sub(t0), "device_state", t2.Sub(t1),
		"send_and_ack", time.Since(t2), "state_bytes", len(doc))
	return err
}

// resumeDevices restarts quiesced virtio devices.
func (m *Machine) resumeDevices() error {
	var first error
	for _, t := range m.virtio.transports {
		if err := t.Resume(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// The State record's document: one byte that says whether the VM was
// running (the target runs it only then, as QEMU's does), then the
// snapshot document of the machine without its memory.
const (
	stateRunning byte = 1
	statePaused  byte = 0
)

// deviceState saves the paused, quiesced machine as a snapshot document
// without memory (the stream carries it), and marks every page of every
// virtqueue's rings in b: the devices wrote the used rings, and sending
// them again costs a few pages.
func (m *Machine) deviceState(b DirtyBitmap, running bool) ([]byte, error) {
	snap := &Snapshot{Vireo: Version, Config: snapshotConfig(&m.cfg)}
	var err error
	if snap.Platform, err = m.savePlatform(); err != nil {
		return nil, err
	}
	if snap.VCPUs, err = m.saveVCPUs(); err != nil {
		return nil, err
	}
	for _, t := range m.virtio.transports {
		st, err := t.SaveState()
		if err != nil {
			return nil, err
		}
		for _, q := range st.Regs {
			n := uint64(q.Num)
			m.markDirty(b, q.Desc, 16*n)
			m.markDirty(b, q.Driver, 6+2*n)
			m.markDirty(b, q.Device, 6+8*n)
		}
		snap.Virtio = append(snap.Virtio, st)
	}
	for _, r := range m.mem.Regions() {
		snap.Memory = append(snap.Memory, guestmem.DumpRegion{GPA: r.GPA, Size: r.Size})
	}
	var buf bytes.Buffer
	if running {
		buf.WriteByte(stateRunning)
	} else {
		buf.WriteByte(statePaused)
	}
	if err := snapshot.Encode(&buf, snap); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
