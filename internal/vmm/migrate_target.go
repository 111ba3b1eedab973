package vmm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/kvm"
	"github.com/vireo-vmm/vireo/internal/migration"
	"github.com/vireo-vmm/vireo/internal/snapshot"
)

// Live migration, target side.
//
// A controller made by NewIncomingController has no machine to start
// with: Run listens on the incoming URI (or first waits for one from
// MigrateIncoming, QEMU's "-incoming defer"), receives the source's RAM
// into fresh anonymous memory and then its device state, and builds the
// machine through buildMachine's restore path with that memory. It
// acknowledges the VM to the source only once the machine is built, then
// runs it. A stream that is corrupt, truncated or of another version
// ends Run with one error line; the source, without an acknowledgement,
// keeps its VM running.

// streamMemory stands in a migrated snapshot for the memory file name
// check() asks for: the memory arrived in the stream, no file is opened.
const streamMemory = memoryPrefix + "stream"

// incoming is a target's migration.
type incoming struct {
	uris chan migration.URI // the URI, once known (buffered)

	mu       sync.Mutex
	status   migration.Status
	uriKnown bool
	start    time.Time
	end      time.Time
	pages    uint64
	passes   int
	err      string
	conn     net.Conn  // the source, until acknowledged
	received time.Time // when the stream ended
}

func (in *incoming) setStatus(st migration.Status, err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.status = st
	if err != nil {
		in.err = err.Error()
	}
	if st.Done() {
		in.end = time.Now()
	}
}

func (in *incoming) info() migration.Info {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := in.status
	if st == "" {
		st = migration.StatusNone
	}
	info := migration.Info{Status: st, Error: in.err}
	info.RAM.Normal, info.RAM.Passes = in.pages, in.passes
	switch {
	case !in.end.IsZero():
		info.TotalTime = in.end.Sub(in.start)
	case !in.start.IsZero():
		info.TotalTime = time.Since(in.start)
	}
	return info
}

// NewIncomingController returns a controller whose VM arrives by live
// migration on uri: "tcp:HOST:PORT", "unix:PATH", or "defer" to wait for
// MigrateIncoming. base supplies the host-side settings (console, log,
// reboot policy) and may name device backends that replace the source's
// (as a snapshot restore does); the machine itself comes from the source.
func NewIncomingController(base Config, uri string) (*Controller, error) {
	in := &incoming{uris: make(chan migration.URI, 1)}
	if uri != "defer" {
		u, err := migration.ParseURI(uri)
		if err != nil {
			return nil, err
		}
		in.uris <- u
		in.uriKnown = true
	}
	sys, err := kvm.Open()
	if err != nil {
		return nil, err
	}
	c := &Controller{cfg: base, sys: sys, actions: make(chan action)}
	c.mig.incoming = in
	// A VM that arrives running resumes, as QEMU's target does: RESUME
	// follows the first START, once the controller has it running.
	var once sync.Once
	var unsubscribe func()
	unsubscribe = c.Subscribe(func(ev Event) {
		if ev.Kind != EventStart {
			return
		}
		once.Do(func() {
			unsubscribe()
			if !c.cfg.StartPaused {
				c.publish(Event{Kind: EventResume, Time: ev.Time})
			}
		})
	})
	return c, nil
}

// Incoming reports whether the controller waits for, or receives, an
// incoming migration (QMP's "inmigrate" run state).
func (c *Controller) Incoming() bool {
	c.mig.mu.Lock()
	in := c.mig.incoming
	c.mig.mu.Unlock()
	if in == nil {
		return false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return !in.status.Done() && c.State() == StateCreated
}

// MigrateIncoming gives the URI to listen on to a target started with
// "defer" (QMP migrate-incoming).
func (c *Controller) MigrateIncoming(uri string) error {
	c.mig.mu.Lock()
	in := c.mig.incoming
	c.mig.mu.Unlock()
	if in == nil {
		return fmt.Errorf("%w: this VM was not started to receive a migration (--incoming defer)", ErrMigration)
	}
	u, err := migration.ParseURI(uri)
	if err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.uriKnown {
		return fmt.Errorf("%w: the incoming migration has already been started", ErrMigration)
	}
	in.uriKnown = true
	in.uris <- u
	return nil
}

// receiveIncoming runs first in Run on a target: it receives the VM and
// prepares c.cfg and c.restore for buildMachine. stop reports that the
// VM was stopped (quit, signal) before it arrived. It serves the
// controller's actions meanwhile.
func (c *Controller) receiveIncoming(ctx context.Context) (stop bool, err error) {
	c.mig.mu.Lock()
	in := c.mig.incoming
	c.mig.mu.Unlock()
	if in == nil {
		return false, nil
	}
	log := c.cfg.Log
	if log == nil {
		log = slog.Default()
	}
	u, stop := serveUntil(ctx, c, in.uris)
	if stop {
		return true, nil
	}
	l, err := u.Listen()
	if err != nil {
		in.setStatus(migration.StatusFailed, err)
		return false, err
	}
	log.Info("waiting for an incoming migration", "uri", u.String())

	type result struct {
		got  *migration.Incoming
		conn net.Conn
		err  error
	}
	res := make(chan result, 1)
	var connMu sync.Mutex
	var conn net.Conn
	abort := func() {
		l.Close()
		connMu.Lock()
		if conn != nil {
			conn.Close()
		}
		connMu.Unlock()
	}
	go func() {
		cn, err := l.Accept()
		l.Close()
		if err != nil {
			res <- result{err: fmt.Errorf("%w: accepting on %s: %v", ErrMigration, u, err)}
			return
		}
		connMu.Lock()
		conn = cn
		connMu.Unlock()
		in.mu.Lock()
		in.start = time.Now()
		in.mu.Unlock()
		c.setIncomingStatus(in, migration.StatusSetup, nil)
		rc := &migration.Receiver{
			Alloc:   c.allocIncoming,
			OnSetup: func() { c.setIncomingStatus(in, migration.StatusActive, nil) },
			OnPass: func(n int, pages uint64) {
				in.mu.Lock()
				in.passes, in.pages = n, in.pages+pages
				in.mu.Unlock()
				c.publish(Event{Kind: EventMigrationPass, Time: time.Now(), Pass: n})
			},
		}
		got, err := rc.Receive(cn)
		in.markReceived()
		if err != nil {
			cn.Close()
			err = fmt.Errorf("%w: receiving on %s: %w", ErrMigration, u, unprefixed{err})
		}
		res <- result{got, cn, err}
	}()
	r, stop := serveUntil(ctx, c, res)
	if stop {
		abort()
		if r = <-res; r.got != nil {
			r.got.Memory.Close()
			r.conn.Close()
		}
		c.setIncomingStatus(in, migration.StatusCancelled, nil)
		return true, nil
	}
	if r.err != nil {
		c.setIncomingStatus(in, migration.StatusFailed, r.err)
		return false, r.err
	}
	if err := c.prepareIncoming(r.got); err != nil {
		r.got.Memory.Close()
		migration.WriteAck(r.conn, err)
		r.conn.Close()
		c.setIncomingStatus(in, migration.StatusFailed, err)
		return false, err
	}
	in.mu.Lock()
	in.conn = r.conn
	in.mu.Unlock()
	return false, nil
}

// markReceived records the end of the stream, for the build time log.
func (in *incoming) markReceived() {
	in.mu.Lock()
	in.received = time.Now()
	in.mu.Unlock()
}

// unprefixed is a migration package error without its "migration: "
// prefix, for a message that already says migration.
type unprefixed struct{ err error }

func (u unprefixed) Error() string { return strings.TrimPrefix(u.err.Error(), "migration: ") }
func (u unprefixed) Unwrap() error { return u.err }

// serveUntil answers the controller's actions until ch delivers a
// value; stop reports that the VM is to end instead (Stop, or ctx ended).
func serveUntil[T any](ctx context.Context, c *Controller, ch <-chan T) (v T, stop bool) {
	for {
		select {
		case v = <-ch:
			return v, false
		case <-ctx.Done():
			c.emit(EventShutdown, false, "host-signal")
			return v, true
		case a := <-c.actions:
			if a.kind == actStop {
				c.emit(EventShutdown, false, "host-qmp-quit")
				a.reply <- nil
				return v, true
			}
			a.reply <- fmt.Errorf("the VM is waiting for an incoming migration: %w", ErrState)
		}
	}
}

func (c *Controller) setIncomingStatus(in *incoming, st migration.Status, err error) {
	in.setStatus(st, err)
	c.publish(Event{Kind: EventMigration, Time: time.Now(), Reason: string(st)})
}

// allocIncoming checks the source's machine description and RAM layout
// and maps fresh anonymous memory for it.
func (c *Controller) allocIncoming(regions []guestmem.RegionSpec, doc []byte) (*guestmem.Memory, error) {
	var sc SnapshotConfig
	if err := json.Unmarshal(doc, &sc); err != nil {
		return nil, fmt.Errorf("%w: the source's machine description: %v", ErrMigration, err)
	}
	want := x86.RAMRegions(sc.MemoryBytes)
	if !slices.Equal(want, regions) {
		return nil, fmt.Errorf("%w: %w: %d MiB announced in %d regions, which this Vireo lays out differently", ErrMigration, migration.ErrLayout, sc.MemoryBytes>>20, len(regions))
	}
	if err := checkHostMemory(sc.MemoryBytes); err != nil {
		return nil, err
	}
	return guestmem.New(regions, guestmem.Backing{HugePages: sc.HugePages, Merge: sc.Merge})
}

// prepareIncoming decodes and checks the device state and sets up the
// restore of the received machine.
func (c *Controller) prepareIncoming(got *migration.Incoming) error {
	if len(got.State) < 1 || got.State[0] > stateRunning {
		return fmt.Errorf("%w: device state: no run state", ErrMigration)
	}
	var snap Snapshot
	if err := snapshot.Decode(bytes.NewReader(got.State[1:]), &snap); err != nil {
		return fmt.Errorf("%w: device state: %w", ErrMigration, err)
	}
	snap.MemoryFile = streamMemory
	if err := snap.check(); err != nil {
		return fmt.Errorf("%w: device state: %w", ErrMigration, err)
	}
	regions := got.Memory.Regions()
	if len(snap.Memory) != len(regions) {
		return fmt.Errorf("%w: the device state describes %d memory regions, the stream %d", ErrMigration, len(snap.Memory), len(regions))
	}
	for i, r := range snap.Memory {
		if r.GPA != regions[i].GPA || r.Size != regions[i].Size {
			return fmt.Errorf("%w: the device state's memory region %#x+%#x is not the stream's", ErrMigration, r.GPA, r.Size)
		}
	}
	c.cfg = configFromSnapshot(c.cfg, &snap)
	c.cfg.StartPaused = got.State[0] == statePaused // a paused VM stays paused
	c.restore = &restoreFrom{snap: &snap, memory: got.Memory}
	return nil
}

// adoptMemory makes RAM received by a migration the machine's memory
// and registers its slots (setupMemory's path for an incoming VM).
func (m *Machine) adoptMemory(from *restoreFrom) error {
	mem := from.memory
	from.memory = nil
	m.mem = mem
	specs := x86.RAMRegions(m.cfg.MemoryBytes)
	regions := mem.Regions()
	if len(specs) != len(regions) {
		return fmt.Errorf("%w: %d memory regions received, the layout has %d", ErrMigration, len(regions), len(specs))
	}
	for i, r := range regions {
		if r.GPA != specs[i].GPA || r.Size != specs[i].Size {
			return fmt.Errorf("%w: received memory region %#x+%#x does not match the layout", ErrMigration, r.GPA, r.Size)
		}
		if err := m.vm.SetUserMemoryRegion(uint32(i), 0, r.GPA, r.Size, r.HostAddr()); err != nil {
			return err
		}
	}
	return nil
}

// finishIncoming runs after buildMachine on a target: it acknowledges
// the built machine m to the source, or reports buildErr to it. An
// unacknowledged machine is closed: the source may resume its own VM.
func (c *Controller) finishIncoming(m *Machine, buildErr error) error {
	c.mig.mu.Lock()
	in := c.mig.incoming
	c.mig.mu.Unlock()
	if in == nil {
		return buildErr
	}
	in.mu.Lock()
	conn := in.conn
	in.conn = nil
	in.mu.Unlock()
	if conn == nil {
		return buildErr // a later build (guest reset): nothing to answer
	}
	err := buildErr
	if werr := migration.WriteAck(conn, buildErr); werr != nil && err == nil {
		err = fmt.Errorf("%w: acknowledging the VM to the source: %v", ErrMigration, werr)
	}
	conn.Close()
	if err != nil {
		if m != nil && buildErr == nil {
			m.Close()
		}
		c.setIncomingStatus(in, migration.StatusFailed, err)
		return err
	}
	c.setIncomingStatus(in, migration.StatusCompleted, nil)
	in.mu.Lock()
	received := in.received
	in.mu.Unlock()
	m.log.Debug("incoming migration: VM built and acknowledged", "since_stream_end", time.Since(received))
	return nil
}
