package vmm

import (
	"sync"
	"testing"
	"time"
)

func TestEventBus(t *testing.T) {
	var b eventBus
	var mu sync.Mutex
	var got []string
	record := func(who string) func(Event) {
		return func(ev Event) {
			mu.Lock()
			got = append(got, who+":"+string(ev.Kind))
			mu.Unlock()
		}
	}
	cancelA := b.subscribe(record("a"))
	b.subscribe(record("b"))
	b.publish(Event{Kind: EventStop, Time: time.Now()})
	cancelA()
	cancelA() // twice is harmless
	b.publish(Event{Kind: EventResume, Time: time.Now()})
	want := map[string]bool{"a:STOP": true, "b:STOP": true, "b:RESUME": true}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for _, g := range got {
		if !want[g] {
			t.Errorf("unexpected delivery %s (all: %v)", g, got)
		}
	}
}

// A subscriber may end its own subscription from its callback.
func TestEventBusUnsubscribeFromCallback(t *testing.T) {
	var b eventBus
	n := 0
	var cancel func()
	cancel = b.subscribe(func(Event) {
		n++
		cancel()
	})
	b.publish(Event{Kind: EventStop})
	b.publish(Event{Kind: EventStop})
	if n != 1 {
		t.Errorf("delivered %d times, want 1", n)
	}
}

func TestControllerEmitFeedsSubscribersAndOnEvent(t *testing.T) {
	c := &Controller{}
	var viaHook, viaSub []Event
	c.OnEvent = func(ev Event) { viaHook = append(viaHook, ev) }
	c.Subscribe(func(ev Event) { viaSub = append(viaSub, ev) })
	c.emit(EventPowerdown, false, "")
	c.emit(EventShutdown, true, "guest-shutdown")
	if len(viaHook) != 2 || len(viaSub) != 2 {
		t.Fatalf("OnEvent got %d, subscriber %d; want 2 each", len(viaHook), len(viaSub))
	}
	if ev := viaSub[1]; ev.Kind != EventShutdown || !ev.Guest || ev.Reason != "guest-shutdown" || ev.Time.IsZero() {
		t.Errorf("subscriber got %+v", ev)
	}
}

func TestQueriesWithoutMachine(t *testing.T) {
	c := &Controller{cfg: Config{MemoryBytes: 64 << 20}}
	if v := c.VCPUs(); len(v) != 0 {
		t.Errorf("VCPUs before boot: %v", v)
	}
	if b := c.BlockDevices(); len(b) != 0 {
		t.Errorf("BlockDevices: %v", b)
	}
	if c.MemoryBytes() != 64<<20 {
		t.Errorf("MemoryBytes %d", c.MemoryBytes())
	}
	if _, err := c.BalloonBytes(); err != ErrNoBalloon {
		t.Errorf("BalloonBytes: %v", err)
	}
	if err := c.SetBalloonTarget(1 << 20); err != ErrNoBalloon {
		t.Errorf("SetBalloonTarget: %v", err)
	}
}
