package vmm

import (
	"sync"
)

// EventPowerdown reports a host request that the guest power down.
const EventPowerdown EventKind = "POWERDOWN"

// eventBus fans lifecycle events out to any number of subscribers.
// Its zero value is ready to use.
type eventBus struct {
	mu   sync.Mutex
	next uint64
	subs map[uint64]func(Event)
}

// subscribe registers fn and returns a function that removes it.
func (b *eventBus) subscribe(fn func(Event)) (cancel func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = make(map[uint64]func(Event))
	}
	id := b.next
	b.next++
	b.subs[id] = fn
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, id)
	}
}

// publish calls every subscriber with ev, outside the bus lock so a
// subscriber may unsubscribe from its own callback.
func (b *eventBus) publish(ev Event) {
	b.mu.Lock()
	fns := make([]func(Event), 0, len(b.subs))
	for _, fn := range b.subs {
		fns = append(fns, fn)
	}
	b.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// Subscribe registers fn to receive every lifecycle event from now on, in
// the order the controller emits them, and returns a function that ends
// the subscription. fn runs on the controller goroutine before the action
// that caused the event replies: it must return quickly, must not block and
// must not call back into the controller (queue the event instead).
func (c *Controller) Subscribe(fn func(Event)) (cancel func()) {
	return c.bus.subscribe(fn)
}
