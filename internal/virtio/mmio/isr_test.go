package mmio

import (
	"sync"
	"testing"
)

// TestISRLateACK: an acknowledgement replayed after the device raised the
// same event again (KVM buffered it) keeps the new event; one that
// arrives in time clears the bit, as a plain register would.
func TestISRLateACK(t *testing.T) {
	var r isrReg
	r.raise(IntUsedBuffer)
	if got := r.read(); got != IntUsedBuffer {
		t.Fatalf("read %#x", got)
	}
	r.ack(IntUsedBuffer)
	if got := r.load(); got != 0 {
		t.Fatalf("after a timely ACK: %#x", got)
	}

	r.raise(IntUsedBuffer)
	v := r.read()
	r.raise(IntUsedBuffer | IntConfigChange) // new events before the ACK lands
	r.ack(v)
	if got := r.read(); got != IntUsedBuffer|IntConfigChange {
		t.Fatalf("late ACK lost an event: %#x", got)
	}
	r.ack(IntUsedBuffer | IntConfigChange)
	if got := r.load(); got != 0 {
		t.Fatalf("final ACK left %#x", got)
	}

	// An ACK without a read in between clears only what was not raised
	// since the last read; store resets both halves.
	r.raise(IntConfigChange)
	r.ack(IntConfigChange)
	if got := r.load(); got != IntConfigChange {
		t.Fatalf("ACK of an unread event: %#x", got)
	}
	r.store(0)
	r.ack(0)
	if got := r.read(); got != 0 {
		t.Fatalf("after store(0): %#x", got)
	}
}

// TestISRNoLostEvent races a device raising events against a driver that
// reads, handles and (late) acknowledges: whenever the device raised an
// event after the driver's last read, a read must still see it.
func TestISRNoLostEvent(t *testing.T) {
	var r isrReg
	var mu sync.Mutex
	raised := 0 // events the driver has not seen, under mu
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20000 {
			mu.Lock()
			raised++
			r.raise(IntUsedBuffer)
			mu.Unlock()
		}
	}()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		mu.Lock()
		v := r.read()
		if raised > 0 && v&IntUsedBuffer == 0 {
			mu.Unlock()
			t.Fatal("a raised event was lost")
		}
		raised = 0
		mu.Unlock()
		r.ack(v) // may land after new raises
	}
	mu.Lock()
	defer mu.Unlock()
	if raised > 0 && r.read()&IntUsedBuffer == 0 {
		t.Fatal("the last event was lost")
	}
}
