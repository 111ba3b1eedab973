package balloon

import (
	"errors"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// holdStats activates a rig whose device holds the guest's statistics
// buffer and has actual 16.
func holdStats(t *testing.T, cfg Config) *rig {
	r := startRig(t, cfg, base|FeatureStatsVQ)
	r.drv[roleStats].AddChain(r.buffer(roleStats, statsBuffer(uint64(TagFreeMemory), 42)))
	r.drv[roleInflate].AddChain(r.pfnBuffer(roleInflate, pages(dataGPA, 16)...))
	r.kick()
	r.used(t, roleInflate)
	waitFor(t, "a report", func() bool { return !r.dev.Stats().Updated.IsZero() })
	r.dev.WriteConfig(offActual, []byte{16, 0, 0, 0})
	return r
}

// TestQuiesceKeepsState: a Reset followed by an Activate on the same
// queues (the transport's Quiesce and Resume around a snapshot) keeps
// actual and the statistics buffer, which comes back when due.
func TestQuiesceKeepsState(t *testing.T) {
	r := holdStats(t, Config{StatsInterval: 300 * time.Millisecond})
	r.dev.Reset()
	st := r.dev.State()
	if !st.StatsHeld || st.StatsHead != 0 || st.Actual != 16 {
		t.Fatalf("state while quiesced %+v", st)
	}
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	if id, _ := r.used(t, roleStats); id != 0 {
		t.Errorf("statistics buffer %d returned, want 0", id)
	}
	if r.dev.Actual() != 16 {
		t.Errorf("actual %d after resume", r.dev.Actual())
	}
}

// TestDriverResetEmptiesBalloon: after a reset the driver sets up fresh
// queues: the old statistics buffer is forgotten and actual is zero.
func TestDriverResetEmptiesBalloon(t *testing.T) {
	r := holdStats(t, Config{StatsInterval: time.Hour})
	r.dev.Reset()
	for len(r.dev.Changes()) > 0 {
		<-r.dev.Changes()
	}
	fresh := newRig(t, Config{StatsInterval: time.Hour}, base|FeatureStatsVQ, r.mem)
	fresh.dev = r.dev
	if err := r.dev.Activate(fresh.ctx()); err != nil {
		t.Fatal(err)
	}
	if r.dev.Actual() != 0 {
		t.Errorf("actual %d with fresh queues", r.dev.Actual())
	}
	select {
	case <-r.dev.Changes():
	case <-time.After(5 * time.Second):
		t.Error("no change signalled")
	}
	if s := r.dev.State(); s.StatsHeld {
		t.Errorf("holds a buffer of the old queues: %+v", s)
	}
}

// TestSnapshotRoundTrip saves through virtio.Snapshotter and restores
// into a new device over the same queues.
func TestSnapshotRoundTrip(t *testing.T) {
	cfg := Config{StatsInterval: 200 * time.Millisecond, TargetPages: 64}
	r := holdStats(t, cfg)
	r.dev.Reset() // the transport's Quiesce
	data, err := r.dev.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	if err := New(Config{}).RestoreState(data); !errors.Is(err, ErrConfig) {
		t.Errorf("restore into a device without statistics = %v", err)
	}
	if err := New(cfg).RestoreState([]byte("{")); !errors.Is(err, ErrConfig) {
		t.Errorf("restore of bad JSON = %v", err)
	}
	d := New(Config{StatsInterval: time.Second, TargetPages: 9}) // same features
	if err := d.RestoreState(data); err != nil {
		t.Fatal(err)
	}
	if d.Target() != 64 || d.Actual() != 16 || d.StatsInterval() != 200*time.Millisecond {
		t.Errorf("restored target %d actual %d interval %v", d.Target(), d.Actual(), d.StatsInterval())
	}
	if v, _ := d.Stats().Get(TagFreeMemory); v != 42 {
		t.Errorf("restored free memory %d", v)
	}
	r.dev = d
	if err := d.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	defer d.Reset()
	if err := d.Restore(d.State()); !errors.Is(err, virtio.ErrAlreadyActive) {
		t.Errorf("Restore into an active device = %v", err)
	}
	if id, _ := r.used(t, roleStats); id != 0 {
		t.Errorf("restored device returned head %d, want 0", id)
	}
	bad := d.State()
	bad.StatsInterval = -time.Second
	if err := New(cfg).Restore(bad); !errors.Is(err, ErrStatsInterval) {
		t.Errorf("Restore with a negative interval = %v", err)
	}
}

// TestRestoredHostileState: a saved state naming a statistics head
// outside the queue, or bitmaps of the wrong shape, is not taken over.
func TestRestoredHostileState(t *testing.T) {
	cfg := Config{StatsInterval: time.Hour}
	r := newRig(t, cfg, base|FeatureStatsVQ, nil)
	if err := r.dev.Restore(State{Config: cfg, StatsHeld: true, StatsHead: 60000, Ballooned: [][]uint64{{1, 2}}}); err != nil {
		t.Fatal(err)
	}
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Fatal(err)
	}
	defer r.dev.Reset()
	if s := r.dev.State(); s.StatsHeld || s.Ballooned != nil {
		t.Errorf("took over %+v", s)
	}
}
