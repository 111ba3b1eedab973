package virtio_test

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

func newEventFD(t *testing.T) *hostos.EventFD {
	t.Helper()
	e, err := hostos.NewEventFD()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWorkerEventsAndTimer(t *testing.T) {
	a, b := newEventFD(t), newEventFD(t)
	var calls [2]atomic.Int32
	var timers atomic.Int32
	w, err := virtio.StartWorker(virtio.WorkerConfig{
		Name:   "test",
		Events: []*hostos.EventFD{a, b},
		Handle: func(i int) (time.Duration, error) {
			if i == virtio.TimerEvent {
				timers.Add(1)
				return 0, nil
			}
			calls[i].Add(1)
			if i == 1 {
				return 5 * time.Millisecond, nil
			}
			return 0, nil
		},
		Failed: func(err error) { t.Errorf("worker failed: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Signal()
	a.Signal() // coalesced into one call by the drain
	waitFor(t, "event 0", func() bool { return calls[0].Load() >= 1 })
	b.Signal()
	waitFor(t, "the timer after event 1", func() bool { return timers.Load() == 1 })
	w.Stop()
	w.Stop() // idempotent
	select {
	case <-w.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if calls[1].Load() != 1 || timers.Load() != 1 {
		t.Errorf("event 1 calls %d, timer calls %d", calls[1].Load(), timers.Load())
	}
}

func TestWorkerStopsPromptly(t *testing.T) {
	w, err := virtio.StartWorker(virtio.WorkerConfig{
		Name:   "idle",
		Events: []*hostos.EventFD{newEventFD(t)},
		Handle: func(int) (time.Duration, error) { return time.Hour, nil },
		Failed: func(error) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w.Stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stop took %v", d)
	}
}

func TestWorkerFailures(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		name   string
		handle func(int) (time.Duration, error)
		want   error
	}{
		{"error", func(int) (time.Duration, error) { return 0, boom }, boom},
		{"panic", func(int) (time.Duration, error) { panic("device bug") }, virtio.ErrDevicePanic},
		{"nil dereference", func(int) (time.Duration, error) {
			var q *virtio.Queue
			return 0, q.AddUsed(0, 0)
		}, virtio.ErrDevicePanic},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev := newEventFD(t)
			failed := make(chan error, 2)
			w, err := virtio.StartWorker(virtio.WorkerConfig{Name: c.name, Events: []*hostos.EventFD{ev}, Handle: c.handle, Failed: func(err error) { failed <- err }})
			if err != nil {
				t.Fatal(err)
			}
			ev.Signal()
			select {
			case err := <-failed:
				if !errors.Is(err, c.want) {
					t.Errorf("Failed(%v), want %v", err, c.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Failed not called")
			}
			<-w.Done()
			w.Stop() // after the worker ended by itself
			if len(failed) != 0 {
				t.Error("Failed called twice")
			}
		})
	}
}

func TestWorkerNeedsCallbacks(t *testing.T) {
	if _, err := virtio.StartWorker(virtio.WorkerConfig{Name: "x"}); !errors.Is(err, virtio.ErrWorkerNoHandler) {
		t.Errorf("StartWorker without handler = %v", err)
	}
}

// TestWorkerLoopAllocs: a notification round trip through the worker
// (poll, drain, handler) allocates nothing.
func TestWorkerLoopAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	ev := newEventFD(t)
	var calls atomic.Int64
	w, err := virtio.StartWorker(virtio.WorkerConfig{
		Name:   "allocs",
		Events: []*hostos.EventFD{ev},
		Handle: func(int) (time.Duration, error) { calls.Add(1); return 0, nil },
		Failed: func(err error) { t.Errorf("worker failed: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	allocs := testing.AllocsPerRun(200, func() {
		n := calls.Load()
		ev.Signal()
		for calls.Load() == n {
			runtime.Gosched()
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per notification, want 0", allocs)
	}
}
