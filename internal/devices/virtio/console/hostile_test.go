package console

import (
	"testing"
)

// TestHostileControl sends control messages a well-behaved driver never
// sends: short ones, unknown events, unknown and absent ports, messages
// only the device may send, a failed DEVICE_READY. Each is returned and
// ignored; the device keeps working and never asks for a reset.
func TestHostileControl(t *testing.T) {
	s := listen(t, "s")
	r := newRig(t, Config{Channels: []Channel{{Name: "n", Socket: s}}}, multi)
	r.startSync()
	r.g[ctrlRxQueue].post(4, 256)
	r.g[ctrlTxQueue].send([]byte{1, 2, 3})                  // short
	r.g[ctrlTxQueue].send(nil)                              // empty
	r.ctrl(badID, EventDeviceReady, 0)                      // the driver failed
	r.ctrl(0, EventPortReady, 1)                            // port 0 does not exist here
	r.ctrl(0, EventPortOpen, 1)                             // neither for opening
	r.ctrl(2, EventPortReady, 1)                            // beyond max_nr_ports
	r.ctrl(badID, EventPortOpen, 1)                         // the device id
	r.ctrl(1<<31, EventPortOpen, 1)                         // far beyond
	r.ctrl(1, 0x1234, 1)                                    // unknown event
	r.ctrl(1, EventPortAdd, 1)                              // device-only events
	r.ctrl(1, EventPortName, 1)                             //
	r.ctrl(1, EventConsolePort, 1)                          //
	r.ctrl(1, EventResize, 1)                               //
	r.ctrl(1, EventPortRemove, 1)                           //
	r.ctrl(1, EventPortReady, 0)                            // the driver failed to add it
	r.g[ctrlTxQueue].send(append(make([]byte, 8), 0xff, 1)) // trailing bytes
	r.pass()
	if m := r.received(); len(m) != 0 {
		t.Fatalf("the device answered bogus messages: %+v", m)
	}
	if got := r.g[ctrlTxQueue].UsedIdx(); got != 16 {
		t.Errorf("%d of 16 control requests returned", got)
	}
	// The first trailing-bytes message was DEVICE_READY for port 0; its
	// value 0 means failure. Now the real start-up works.
	got := handshake(t, r)
	if len(got) != 2 || got[0].Control != (Control{1, EventPortAdd, 1}) || got[1].name != "n" {
		t.Fatalf("handshake after bogus messages: %+v", got)
	}
	// PORT_OPEN repeated and PORT_READY again mid-session.
	r.ctrl(1, EventPortOpen, 1)
	r.ctrl(1, EventPortOpen, 1)
	r.ctrl(1, EventPortReady, 1)
	r.pass()
	if m := r.received(); len(m) != 1 || m[0].Event != EventPortName {
		t.Fatalf("after PORT_READY again: %+v", m)
	}
	// A flood of DEVICE_READY never queues more than one PORT_ADD per port.
	for range 12 {
		r.ctrl(badID, EventDeviceReady, 1)
	}
	r.pass()
	if m := r.received(); len(m) != 1 {
		t.Fatalf("%d messages after a DEVICE_READY flood, want 1", len(m))
	}
	if err := r.rec.Failure(); err != nil {
		t.Fatal(err)
	}
}

// TestHostileDataBuffers: receive buffers with nothing writable, transmit
// buffers with writable parts, indirect tables, zero-length requests.
func TestHostileDataBuffers(t *testing.T) {
	var out syncBuffer
	r := newRig(t, Config{Console: &ConsolePort{Output: &out}}, single)
	r.startSync()
	r.openConsole()
	out.b.Reset()
	g0, g1 := r.g[0], r.g[1]
	g1.NextUsed()
	// A receive "buffer" the device may only read: returned with 0 bytes.
	g0.AddChain(bufOf(g0, 8, false))
	r.dev.Enqueue([]byte("abc"))
	r.pass()
	if _, n, ok := g0.NextUsed(); !ok || n != 0 {
		t.Fatalf("read-only receive buffer returned %d bytes", n)
	}
	// Input still waits for a real buffer.
	g0.post(1, 16)
	r.pass()
	if b, _ := g0.taken(t); string(b) != "abc" {
		t.Fatalf("guest got %q", b)
	}
	// Transmit: a request whose writable part is ignored, an empty one,
	// and an indirect one.
	a := g1.Alloc(3)
	r.mem.WriteAt([]byte("xyz"), a)
	g1.AddChain(bufOf(g1, 0, false))
	g1.AddChain(virtioBuf(a, 3, false), bufOf(g1, 16, true))
	b := g1.Alloc(2)
	r.mem.WriteAt([]byte("!\n"), b)
	g1.Publish(g1.WriteIndirect(g1.Alloc(16), virtioBuf(b, 2, false)))
	r.pass()
	if out.String() != "xyz!\n" || g1.UsedIdx() != 4 {
		t.Errorf("output %q, %d requests back", out.String(), g1.UsedIdx())
	}
	for range 3 {
		if _, n, _ := g1.NextUsed(); n != 0 {
			t.Errorf("transmit request returned with %d bytes written", n)
		}
	}
}
