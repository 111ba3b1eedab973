package console

import (
	"errors"
	"io"
	"testing"
	"time"
)

// TestStateRestore saves a device in the middle of a transmit request the
// host could not take whole, restores the state into a new device on the
// same queues and checks that the rest of the request, and only the rest,
// reaches the host.
func TestStateRestore(t *testing.T) {
	s := listen(t, "s")
	r := newRig(t, Config{Channels: []Channel{{Name: "n", Socket: s}}}, multi)
	c := dial(t, s)
	r.startSync()
	handshake(t, r)
	r.ctrl(1, EventPortOpen, 1)
	r.pass()
	r.received()

	// A request far larger than the socket and staging buffers.
	want := pattern(512<<10, 5)
	r.g[txQueue(1)].send(want)
	r.pass()
	got := make([]byte, 64<<10)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	st := r.dev.State()
	var ps PortState
	for _, p := range st.Ports {
		if p.ID == 1 {
			ps = p
		}
	}
	if !st.Active || st.Features&FeatureMultiport == 0 || !ps.TxBusy || ps.Socket != s.Path() || !ps.GuestOpen || !ps.HostOpen || !ps.Ready {
		t.Fatalf("state %+v, port %+v", st, ps)
	}
	if st.Queues[txQueue(1)].LastAvail != 0 {
		t.Fatalf("the request in progress counts as taken: %+v", st.Queues[txQueue(1)])
	}
	// The bytes the client has not read yet are in its socket; the
	// staged ones are not delivered and must come again from the chain.
	delivered := ps.TxSkip
	if delivered < 64<<10 || delivered >= uint64(len(want)) {
		t.Fatalf("%d bytes delivered before the snapshot", delivered)
	}

	// A new device, and a new client, as after a restore in a new process.
	s2 := listen(t, "s2")
	c2 := dial(t, s2)
	d2, err := New(Config{Channels: []Channel{{Name: "n", Socket: s2}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Restore(st); err != nil {
		t.Fatal(err)
	}
	for i, q := range r.q {
		if err := q.Restore(r.mem, st.Queues[i]); err != nil {
			t.Fatal(err)
		}
	}
	r.dev = d2
	r.startSync()
	rest := make([]byte, uint64(len(want))-delivered)
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(c2, rest)
		done <- err
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if string(rest) != string(want[delivered:]) {
				t.Fatal("restored device sent the wrong bytes")
			}
			return
		case <-time.After(5 * time.Millisecond):
			r.pass()
		}
	}
}

func TestRestoreMismatch(t *testing.T) {
	s := listen(t, "s")
	d, _ := New(Config{Channels: []Channel{{Name: "n", Socket: s}}})
	st := d.State()
	if st.Active || len(st.Ports) != 1 || st.Ports[0].Name != "n" {
		t.Fatalf("inactive state %+v", st)
	}
	other, _ := New(Config{Channels: []Channel{{Name: "m", Socket: listen(t, "t")}}})
	if err := other.Restore(st); !errors.Is(err, ErrConfig) {
		t.Errorf("Restore into a different device: %v", err)
	}
	cons, _ := New(Config{Console: &ConsolePort{}})
	if err := cons.Restore(st); !errors.Is(err, ErrConfig) {
		t.Errorf("Restore into a console: %v", err)
	}
	if err := d.Restore(State{}); !errors.Is(err, ErrConfig) {
		t.Errorf("Restore of nothing: %v", err)
	}
}
