package migration

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// fakeVM is a Source whose "guest" is a goroutine writing guest memory
// through guestmem (so guestmem's device-write tracking is its dirty log).
type fakeVM struct {
	mem      *guestmem.Memory
	stop     chan struct{}
	wg       sync.WaitGroup
	writes   atomic.Int64
	synced   int64 // writes at the last CollectDirty
	started  atomic.Bool
	finished atomic.Bool
	resumed  atomic.Bool
	paused   atomic.Bool
}

func newFakeVM(t *testing.T, specs []guestmem.RegionSpec) *fakeVM {
	v := &fakeVM{mem: newMem(t, specs), stop: make(chan struct{})}
	// Some content to start with: every third page, and a zero page in
	// the middle of data.
	for i, r := range v.mem.Regions() {
		for p := uint64(0); p < r.Size/PageSize; p += 3 {
			v.mem.WriteAt(bytes.Repeat([]byte{byte(i*7 + int(p))}, PageSize), r.GPA+p*PageSize)
		}
	}
	return v
}

// run starts the guest: it dirties random pages until stopped.
func (v *fakeVM) run() {
	v.started.Store(true)
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		rng := rand.New(rand.NewSource(1))
		regions := v.mem.Regions()
		for {
			select {
			case <-v.stop:
				return
			default:
			}
			r := regions[rng.Intn(len(regions))]
			p := uint64(rng.Int63n(int64(r.Size / PageSize)))
			var val [8]byte
			rng.Read(val[:])
			if rng.Intn(10) == 0 {
				v.mem.Zero(r.GPA+p*PageSize, PageSize) // pages also become zero
			} else {
				v.mem.WriteAt(val[:], r.GPA+p*PageSize+uint64(rng.Intn(PageSize-8)))
			}
			v.writes.Add(1)
			if v.writes.Load()%64 == 0 {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
}

func (v *fakeVM) pause() {
	if v.paused.CompareAndSwap(false, true) {
		close(v.stop)
		v.wg.Wait()
	}
}

func (v *fakeVM) Memory() *guestmem.Memory  { return v.mem }
func (v *fakeVM) Describe() ([]byte, error) { return []byte(`{"fake":1}`), nil }
func (v *fakeVM) StartDirtyLog() error      { v.mem.StartDirtyTracking(); return nil }
func (v *fakeVM) StopDirtyLog()             { v.mem.StopDirtyTracking() }

// CollectDirty waits, while the guest runs, until it has written
// something since the last call, so every pass has work even on a
// loaded machine.
func (v *fakeVM) CollectDirty(b [][]uint64) error {
	for deadline := time.Now().Add(10 * time.Second); v.started.Load() && !v.paused.Load() && v.writes.Load() < v.synced+16 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	v.synced = v.writes.Load()
	for i := range b {
		if err := v.mem.TakeDirty(i, b[i]); err != nil {
			return err
		}
	}
	return nil
}

func (v *fakeVM) Finish(b [][]uint64, send func([]byte) error) error {
	v.pause()
	if err := v.CollectDirty(b); err != nil {
		return err
	}
	err := send([]byte(`{"devices":"state"}`))
	if err != nil {
		v.resumed.Store(true)
		return err
	}
	v.finished.Store(true)
	return nil
}

// target listens on a Unix socket and receives one stream.
type target struct {
	uri  URI
	l    net.Listener
	done chan struct{}
	in   *Incoming
	err  error
	// refuse makes the target refuse the VM after receiving it.
	refuse error
}

func startTarget(t *testing.T) *target {
	t.Helper()
	uri := URI{Network: "unix", Address: filepath.Join(t.TempDir(), "mig.sock")}
	l, err := uri.Listen()
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{uri: uri, l: l, done: make(chan struct{})}
	go func() {
		defer close(tg.done)
		c, err := l.Accept()
		l.Close()
		if err != nil {
			tg.err = err
			return
		}
		defer c.Close()
		rc := &Receiver{Alloc: func(s []guestmem.RegionSpec, _ []byte) (*guestmem.Memory, error) {
			return guestmem.New(s, guestmem.Backing{})
		}}
		tg.in, tg.err = rc.Receive(c)
		if tg.err == nil {
			WriteAck(c, tg.refuse)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-tg.done
		if tg.in != nil && tg.in.Memory != nil {
			tg.in.Memory.Close()
		}
	})
	return tg
}

// TestSendWhileDirtying migrates a fake VM whose memory changes
// throughout the live passes: the target ends up with exactly the
// source's memory and state.
func TestSendWhileDirtying(t *testing.T) {
	specs := []guestmem.RegionSpec{{GPA: 0, Size: 2 << 20}, {GPA: 4 << 20, Size: 1 << 20}}
	vm := newFakeVM(t, specs)
	tg := startTarget(t)
	// A limit no pass meets: the sender runs all its passes. The target
	// checks every page against the source's checksums as well.
	s, err := NewSender(Params{DowntimeLimit: 0, MaxPasses: 5, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	var statuses []Status
	var passes []int
	vm.run()
	err = s.Run(context.Background(), tg.uri, vm, Hooks{
		Status: func(st Status) { statuses = append(statuses, st) },
		Pass:   func(p int) { passes = append(passes, p) },
	})
	<-tg.done
	if err != nil || tg.err != nil {
		t.Fatalf("source: %v; target: %v", err, tg.err)
	}
	if !vm.finished.Load() || vm.mem.DirtyTracking() {
		t.Fatal("Finish not completed or dirty tracking left on")
	}
	for i, r := range vm.mem.Regions() {
		got := tg.in.Memory.Regions()[i].Host
		if !bytes.Equal(got, r.Host) {
			for p := uint64(0); p < r.Size; p += PageSize {
				if !bytes.Equal(got[p:p+PageSize], r.Host[p:p+PageSize]) {
					t.Fatalf("region %d page %d differs on the target", i, p/PageSize)
				}
			}
		}
	}
	if tg.in.Verified != 3<<20/PageSize {
		t.Errorf("target verified %d pages", tg.in.Verified)
	}
	if string(tg.in.State) != `{"devices":"state"}` || string(tg.in.Setup) != `{"fake":1}` {
		t.Fatalf("state %q setup %q", tg.in.State, tg.in.Setup)
	}
	info := s.Info()
	want := []Status{StatusSetup, StatusActive, StatusCompleted}
	if len(statuses) != 3 || statuses[0] != want[0] || statuses[1] != want[1] || statuses[2] != want[2] {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
	if len(passes) != 5 || info.RAM.Passes != 6 || tg.in.Passes != 6 {
		t.Errorf("live passes %v, sender counts %d, target %d; want 5 live + 1 final", passes, info.RAM.Passes, tg.in.Passes)
	}
	if info.Status != StatusCompleted || info.Downtime <= 0 || info.RAM.Transferred == 0 || info.RAM.Normal == 0 || info.RAM.Duplicate == 0 || info.RAM.Total != 3<<20 {
		t.Errorf("info %+v", info)
	}
	t.Logf("guest writes %d, info %+v", vm.writes.Load(), info)
}

// TestSendConverges stops after pass 1 when the guest is idle.
func TestSendConverges(t *testing.T) {
	vm := newFakeVM(t, []guestmem.RegionSpec{{GPA: 0, Size: 4 << 20}})
	tg := startTarget(t)
	s, _ := NewSender(DefaultParams())
	if err := s.Run(context.Background(), tg.uri, vm, Hooks{}); err != nil {
		t.Fatal(err)
	}
	<-tg.done
	if info := s.Info(); info.RAM.Passes != 2 || info.RAM.DirtySyncCount != 2 {
		t.Fatalf("idle guest: %d passes, %d syncs; want 1 live pass and the final one", info.RAM.Passes, info.RAM.DirtySyncCount)
	}
	if !bytes.Equal(tg.in.Memory.Regions()[0].Host, vm.mem.Regions()[0].Host) {
		t.Fatal("memory differs")
	}
}

// TestSendCancel throttles a migration, cancels it half-way and checks
// the VM was never stopped.
func TestSendCancel(t *testing.T) {
	vm := newFakeVM(t, []guestmem.RegionSpec{{GPA: 0, Size: 4 << 20}})
	tg := startTarget(t)
	s, _ := NewSender(Params{DowntimeLimit: time.Millisecond, MaxBandwidth: 256 << 10, MaxPasses: 30})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx, tg.uri, vm, Hooks{}) }()
	deadline := time.Now().Add(10 * time.Second)
	for s.Info().RAM.Transferred < 300<<10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Info().Status; st != StatusActive {
		t.Fatalf("status %s before cancelling, want active", st)
	}
	start := time.Now()
	cancel()
	err := <-done
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("cancel: %v after %v", err, time.Since(start))
	}
	if info := s.Info(); info.Status != StatusCancelled {
		t.Fatalf("status %s, want cancelled", info.Status)
	}
	if vm.paused.Load() || vm.mem.DirtyTracking() {
		t.Fatal("cancelled migration paused the VM or left tracking on")
	}
	<-tg.done
	if tg.err == nil {
		t.Fatal("target accepted a cancelled stream")
	}
	t.Logf("target: %v", tg.err)
}

// TestSendTargetRefuses: a target that refuses the VM fails the
// migration with its reason, and the VM runs again.
func TestSendTargetRefuses(t *testing.T) {
	vm := newFakeVM(t, []guestmem.RegionSpec{{GPA: 0, Size: 1 << 20}})
	tg := startTarget(t)
	tg.refuse = errors.New("kvm: cannot create the VM")
	s, _ := NewSender(DefaultParams())
	err := s.Run(context.Background(), tg.uri, vm, Hooks{})
	if !errors.Is(err, ErrRejected) || !vm.resumed.Load() {
		t.Fatalf("err %v, resumed %v", err, vm.resumed.Load())
	}
	if info := s.Info(); info.Status != StatusFailed || info.Error == "" {
		t.Fatalf("info %+v", info)
	}
}

// TestSendNoTarget fails at once with the connection error.
func TestSendNoTarget(t *testing.T) {
	vm := newFakeVM(t, []guestmem.RegionSpec{{GPA: 0, Size: 1 << 20}})
	s, _ := NewSender(DefaultParams())
	err := s.Run(context.Background(), URI{Network: "unix", Address: filepath.Join(t.TempDir(), "none")}, vm, Hooks{})
	if err == nil || s.Info().Status != StatusFailed {
		t.Fatalf("err %v, status %s", err, s.Info().Status)
	}
	t.Log(err)
}

func TestParamsCheck(t *testing.T) {
	for _, p := range []Params{
		{DowntimeLimit: -1, MaxPasses: 1},
		{DowntimeLimit: MaxDowntimeLimit + 1, MaxPasses: 1},
		{MaxBandwidth: -5, MaxPasses: 1},
		{},
	} {
		if _, err := NewSender(p); !errors.Is(err, ErrParams) {
			t.Errorf("%+v: %v", p, err)
		}
	}
}

// TestConverged walks the stop decision through a shrinking dirty set.
func TestConverged(t *testing.T) {
	s, _ := NewSender(Params{DowntimeLimit: 40 * time.Millisecond, MaxPasses: 6})
	s.bandwidth = 100 * PageSize // 100 pages a second: 4 pages fit in the limit
	now := time.Now()
	for i, c := range []struct {
		dirty uint64
		pass  int
		want  bool
	}{
		{50, 1, false}, // 500 ms
		{3, 2, false},  // fits, but the set is still shrinking fast and above a quarter of the limit
		{3, 3, true},   // fits and no longer shrinks
		{1, 4, true},   // within a quarter of the limit
		{0, 5, true},
		{90, 6, true}, // passes used up
	} {
		if got := s.converged(c.dirty, now, c.pass); got != c.want {
			t.Errorf("step %d: %d dirty pages after pass %d: converged %v, want %v", i, c.dirty, c.pass, got, c.want)
		}
	}
	if n := s.Info().RAM.DirtySyncCount; n != 6 {
		t.Errorf("%d syncs counted", n)
	}
}
