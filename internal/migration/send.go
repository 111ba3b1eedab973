package migration

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"sync"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// Source is the running VM being migrated, as the sender sees it. Its
// memory must stay mapped until Sender.Run returns.
type Source interface {
	// Memory is guest RAM.
	Memory() *guestmem.Memory
	// Describe returns the machine description for the Setup record.
	Describe() ([]byte, error)
	// StartDirtyLog starts recording the pages written from now on, by
	// the guest and by the VMM's devices.
	StartDirtyLog() error
	// CollectDirty ORs into bitmaps (one per region, one bit per page)
	// the pages written since the previous call or StartDirtyLog, and
	// forgets them.
	CollectDirty(bitmaps [][]uint64) error
	// StopDirtyLog stops recording.
	StopDirtyLog()
	// Finish pauses the VM and quiesces its devices, ORs into bitmaps
	// every page written since the last CollectDirty and every page a
	// device may have written, saves the device state and calls send
	// with it while the VM stays paused. If send fails the VM runs
	// again as before and Finish returns send's error; on success it
	// stays paused.
	Finish(bitmaps [][]uint64, send func(state []byte) error) error
}

// Hooks report progress; they run on the sender's goroutine and must
// not block.
type Hooks struct {
	Status func(Status)
	Pass   func(pass int)
}

// Timeouts of the sender.
const (
	// writeTimeout bounds one write to a target that stopped reading.
	writeTimeout = 60 * time.Second
	// ackTimeout bounds the wait for the target to rebuild the VM.
	ackTimeout = 60 * time.Second
	// minMeasure is the smallest pass that updates the bandwidth estimate.
	minMeasure = 256 << 10
)

// Sender runs one outgoing migration and reports its progress. Its
// methods are safe for concurrent use.
type Sender struct {
	mu     sync.Mutex
	params Params
	info   Info
	start  time.Time
	// bandwidth is the last measured throughput in bytes per second.
	bandwidth float64
	// unthrottled is set for the final pass.
	unthrottled bool
	// lastSync is when the dirty log was last collected (or started),
	// lastDirty how many pages it found then.
	lastSync  time.Time
	lastDirty uint64
}

// NewSender returns a sender with parameters p (see DefaultParams).
func NewSender(p Params) (*Sender, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	return &Sender{params: p, info: Info{Status: StatusNone}}, nil
}

// Params returns the current parameters.
func (s *Sender) Params() Params {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.params
}

// SetParams changes the parameters; a running migration uses them from
// its next decision or write on.
func (s *Sender) SetParams(p Params) error {
	if err := p.Check(); err != nil {
		return err
	}
	s.mu.Lock()
	s.params = p
	s.mu.Unlock()
	return nil
}

// Info returns the migration's progress.
func (s *Sender) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.info
	if !in.Status.Done() && in.Status != StatusNone {
		in.TotalTime = time.Since(s.start)
	}
	return in
}

func (s *Sender) setStatus(st Status, h Hooks) {
	s.mu.Lock()
	s.info.Status = st
	s.mu.Unlock()
	if h.Status != nil {
		h.Status(st)
	}
}

// ErrCancelled is the outcome of a cancelled migration.
var ErrCancelled = errors.New("migration cancelled")

// Run migrates src to the target listening on uri and returns when the
// target has acknowledged the VM (the VM is left paused), or on failure
// (the VM runs as before). Cancelling ctx cancels the migration; with a
// cause other than context.Canceled (context.WithCancelCause) it fails
// with that cause instead.
func (s *Sender) Run(ctx context.Context, uri URI, src Source, h Hooks) (err error) {
	s.mu.Lock()
	if s.info.Status != StatusNone {
		s.mu.Unlock()
		return fmt.Errorf("migration: a sender runs once")
	}
	s.start = time.Now()
	s.info = Info{Status: StatusSetup}
	s.info.RAM.Total = src.Memory().Size()
	s.mu.Unlock()
	if h.Status != nil {
		h.Status(StatusSetup)
	}
	defer func() {
		st := StatusCompleted
		switch cause := context.Cause(ctx); {
		case err != nil && errors.Is(cause, context.Canceled):
			st, err = StatusCancelled, ErrCancelled
		case err != nil && cause != nil:
			// Ended from outside for a reason of its own (the VM reset).
			st, err = StatusFailed, cause
		case err != nil:
			st = StatusFailed
		}
		s.mu.Lock()
		s.info.TotalTime = time.Since(s.start)
		s.info.ExpectedDowntime = 0
		if err != nil {
			s.info.Error = err.Error()
			s.info.Downtime = 0
		}
		s.mu.Unlock()
		s.setStatus(st, h)
	}()

	conn, err := uri.Dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	mt := &meter{conn: conn, s: s, ctx: ctx}
	w := NewWriter(mt)
	mem := src.Memory()
	desc, err := src.Describe()
	if err != nil {
		return err
	}
	specs := make([]guestmem.RegionSpec, len(mem.Regions()))
	bitmaps := make([][]uint64, len(specs))
	for i, r := range mem.Regions() {
		specs[i] = guestmem.RegionSpec{GPA: r.GPA, Size: r.Size}
		bitmaps[i] = make([]uint64, guestmem.BitmapWords(r.Size))
	}
	if err := w.Header(); err != nil {
		return s.streamErr(err)
	}
	if err := w.Setup(specs, desc); err != nil {
		return s.streamErr(err)
	}
	if err := src.StartDirtyLog(); err != nil {
		return err
	}
	defer src.StopDirtyLog()
	s.mu.Lock()
	s.info.SetupTime = time.Since(s.start)
	s.lastSync = time.Now()
	s.mu.Unlock()
	s.setStatus(StatusActive, h)

	// Pass 1: all of RAM but its zero pages, which the target has.
	pass := 1
	if err := s.pass(w, pass, h, func() (uint64, error) { return s.sendAll(w, mem) }); err != nil {
		return err
	}
	for {
		for _, b := range bitmaps {
			clear(b)
		}
		t := time.Now()
		if err := src.CollectDirty(bitmaps); err != nil {
			return err
		}
		dirty := countBits(bitmaps)
		if s.converged(dirty, t, pass) {
			break
		}
		pass++
		if err := s.pass(w, pass, h, func() (uint64, error) { return s.sendDirty(w, mem, bitmaps) }); err != nil {
			return err
		}
	}

	// The final pass with the VM paused, then the device state.
	down := time.Now()
	err = src.Finish(bitmaps, func(state []byte) error {
		s.mu.Lock()
		s.unthrottled = true
		before := s.info.RAM.Transferred
		s.mu.Unlock()
		t := time.Now()
		pass++
		sent, err := s.sendDirty(w, mem, bitmaps)
		if err == nil {
			err = w.EndPass(uint32(pass), sent)
		}
		if err == nil {
			err = w.State(state)
		}
		if err == nil && s.Params().Verify {
			err = sendChecksums(w, mem)
		}
		if err == nil {
			err = w.End(uint32(pass))
		}
		if err != nil {
			return s.streamErr(err)
		}
		s.mu.Lock()
		s.info.RAM.Passes = pass
		s.info.RAM.Remaining = 0
		s.info.RAM.DowntimeBytes = s.info.RAM.Transferred - before
		s.info.FinalWrite = time.Since(t)
		s.mu.Unlock()
		conn.SetReadDeadline(time.Now().Add(ackTimeout))
		return ReadAck(conn)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.info.Downtime = time.Since(down)
	s.info.RAM.DirtySyncCount++ // Finish collected the last pages
	s.mu.Unlock()
	return nil
}

// Abort records a migration that failed before Run could start (with
// cancelled status when err is ErrCancelled or context.Canceled).
func (s *Sender) Abort(err error, h Hooks) {
	st := StatusFailed
	if errors.Is(err, ErrCancelled) || errors.Is(err, context.Canceled) {
		st, err = StatusCancelled, ErrCancelled
	}
	s.mu.Lock()
	if s.info.Status != StatusNone {
		s.mu.Unlock()
		return
	}
	s.start = time.Now()
	s.info = Info{Status: st, Error: err.Error()}
	s.mu.Unlock()
	if h.Status != nil {
		h.Status(st)
	}
}

// sendChecksums writes Verify records for all of mem.
func sendChecksums(w *Writer, mem *guestmem.Memory) error {
	sums := make([]uint32, 0, MaxVerifyPages)
	for i, r := range mem.Regions() {
		pages := r.Size / PageSize
		for first := uint64(0); first < pages; first += MaxVerifyPages {
			sums = sums[:0]
			for p := first; p < min(pages, first+MaxVerifyPages); p++ {
				sums = append(sums, PageChecksum(r.Host[p*PageSize:(p+1)*PageSize]))
			}
			if err := w.Verify(uint32(i), first, sums); err != nil {
				return err
			}
		}
	}
	return nil
}

// pass runs one live pass through send and closes it.
func (s *Sender) pass(w *Writer, n int, h Hooks, send func() (uint64, error)) error {
	t := time.Now()
	before := s.transferred()
	sent, err := send()
	if err == nil {
		err = w.EndPass(uint32(n), sent)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return s.streamErr(err)
	}
	d := time.Since(t)
	bytes := s.transferred() - before
	s.mu.Lock()
	if bytes > 0 && (bytes >= minMeasure || d >= 20*time.Millisecond) {
		s.bandwidth = float64(bytes) / d.Seconds()
		s.info.RAM.Mbps = s.bandwidth * 8 / 1e6
	}
	s.info.RAM.Passes = n
	s.mu.Unlock()
	if h.Pass != nil {
		h.Pass(n)
	}
	return nil
}

// converged records a dirty-set measurement (dirty pages collected at
// t, after pass number pass) and decides whether to stop the VM. The VM
// stops when the dirty pages fit in the downtime limit at the measured
// bandwidth and either fit in a quarter of it or stopped shrinking (less
// than a quarter fewer than after the previous pass): while passes still
// shrink the set, another one costs little and shortens the pause, which
// also holds the target's rebuild time. It stops regardless once the
// passes are used up.
func (s *Sender) converged(dirty uint64, t time.Time, pass int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.info.RAM.DirtySyncCount++
	s.info.RAM.Remaining = dirty * PageSize
	// Pages dirtied since the previous collection, per second.
	s.info.RAM.DirtyPagesRate = uint64(float64(dirty) / max(t.Sub(s.lastSync).Seconds(), 1e-3))
	s.lastSync = t
	if dirty == 0 {
		s.info.ExpectedDowntime = 0
		return true
	}
	if s.bandwidth <= 0 {
		// Nothing measured yet (tiny passes so far): stop once what is
		// left is as small as they were.
		return dirty*PageSize <= minMeasure || pass >= s.params.MaxPasses
	}
	expected := time.Duration(float64(dirty*PageSize) / s.bandwidth * float64(time.Second))
	s.info.ExpectedDowntime = expected
	prev := s.lastDirty
	s.lastDirty = dirty
	limit := s.params.DowntimeLimit
	shrinking := prev == 0 || dirty < prev-prev/4
	return expected <= limit && (expected <= limit/4 || !shrinking) || pass >= s.params.MaxPasses
}

func (s *Sender) transferred() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info.RAM.Transferred
}

// streamErr names a failed write to the target.
func (s *Sender) streamErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("migration: the target stopped reading: %w", err)
	}
	if errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("migration: connection closed: %w", err)
	}
	return fmt.Errorf("migration: sending to the target: %w", err)
}

func countBits(bitmaps [][]uint64) uint64 {
	var n uint64
	for _, b := range bitmaps {
		for _, w := range b {
			n += uint64(bits.OnesCount64(w))
		}
	}
	return n
}
