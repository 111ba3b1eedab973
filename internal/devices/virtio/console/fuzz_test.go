package console

import (
	"encoding/binary"
	"testing"
)

// controlSeed encodes control messages as fuzz input records.
func controlSeed(msgs ...Control) []byte {
	var out []byte
	for _, m := range msgs {
		var b [ControlSize]byte
		m.Put(b[:])
		out = append(out, ControlSize)
		out = append(out, b[:]...)
	}
	return out
}

// FuzzConsoleControl feeds arbitrary control requests from the guest to a
// multiport device with a console and two channels (one with a client),
// then checks that everything the device answered is a well-formed
// message about a real port, and that a proper start-up still works.
//
// Input: records of one length byte (0-31) followed by that many bytes,
// each one control request; at most 12 records are used.
func FuzzConsoleControl(f *testing.F) {
	f.Add(controlSeed(Control{badID, EventDeviceReady, 1}, Control{1, EventPortReady, 1}, Control{1, EventPortOpen, 1}), true)
	f.Add(controlSeed(Control{0, EventPortReady, 1}, Control{0, EventPortOpen, 0}, Control{2, EventPortReady, 1}), false)
	f.Add(controlSeed(Control{7, EventPortOpen, 1}, Control{badID, EventPortReady, 1}, Control{1, 99, 1}), true)
	f.Add([]byte{3, 1, 2, 3, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false)
	// Sockets outlive devices: share them between runs (one with a
	// client, one without) to keep each run cheap.
	sa, sb, sc := listen(f, "a"), listen(f, "b"), listen(f, "c")
	dial(f, sb)
	f.Fuzz(func(t *testing.T, data []byte, connect bool) {
		b := sc
		if connect {
			b = sb
		}
		r := newRig(t, Config{Console: &ConsolePort{}, Channels: []Channel{{Name: "a", Socket: sa}, {Name: "b", Socket: b}}}, multi)
		r.startSync()
		r.g[ctrlRxQueue].post(16, 256)
		ready := map[uint32]bool{}
		for n := 0; n < 12 && len(data) > 0; n++ {
			l := int(data[0] & 31)
			data = data[1:]
			l = min(l, len(data))
			rec := data[:l]
			data = data[l:]
			if c, ok := ParseControl(rec); ok && c.Event == EventPortReady && c.Value != 0 {
				ready[c.ID] = true
			}
			r.g[ctrlTxQueue].send(rec)
		}
		r.pass()
		got := r.received()
		check := func(m msg) {
			if m.ID > 2 {
				t.Fatalf("message for port %d of 3: %+v", m.ID, m)
			}
			switch m.Event {
			case EventPortAdd, EventConsolePort, EventPortOpen:
				if m.name != "" {
					t.Fatalf("trailing bytes in %+v", m)
				}
			case EventPortName:
				if want := [...]string{"", "a", "b"}[m.ID]; m.name != want || m.ID == 0 {
					t.Fatalf("port %d named %q", m.ID, m.name)
				}
			default:
				t.Fatalf("device sent event %d", m.Event)
			}
			if m.Event != EventPortAdd && !ready[m.ID] {
				t.Fatalf("%+v before the guest made the port ready", m)
			}
			if m.Event == EventConsolePort && m.ID != 0 {
				t.Fatalf("port %d announced as a console", m.ID)
			}
		}
		for _, m := range got {
			check(m)
		}
		if n, avail := r.g[ctrlTxQueue].UsedIdx(), r.g[ctrlTxQueue].availIdx(t); n != avail {
			t.Fatalf("%d control requests returned of %d", n, avail)
		}
		// Whatever came before, a clean start-up works.
		r.g[ctrlRxQueue].post(len(got), 256)
		r.ctrl(badID, EventDeviceReady, 1)
		r.ctrl(1, EventPortReady, 1)
		ready[1] = true
		r.pass()
		named := false
		for _, m := range r.received() {
			check(m)
			named = named || (m.Event == EventPortName && m.ID == 1)
		}
		if !named {
			t.Fatal("port 1 was not named after a clean start-up")
		}
		if err := r.rec.Failure(); err != nil {
			t.Fatal(err)
		}
		var cfg [4]byte
		r.dev.ReadConfig(configMaxPorts, cfg[:])
		if binary.LittleEndian.Uint32(cfg[:]) != 3 {
			t.Fatal("max_nr_ports changed")
		}
	})
}
