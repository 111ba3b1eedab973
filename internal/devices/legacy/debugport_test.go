package legacy

import (
	"bytes"
	"testing"
	"time"
)

func TestDebugPortMarkers(t *testing.T) {
	start := time.Unix(1000, 0)
	c := &testClock{start}
	var seen []Marker
	d := NewDebugPort(start, func(v byte, since time.Duration) {
		seen = append(seen, Marker{v, since})
	})
	d.now = c.now
	c.t = start.Add(10 * time.Millisecond)
	wr(d, 0, 0x40)
	wr(d, 0, 0x00) // an I/O delay write
	wr(d, 0, 0x3f)
	c.t = start.Add(25 * time.Millisecond)
	d.Write(0, []byte{0x41, 0x99}) // wide write: low byte counts
	wr(d, 0, 0x50)
	wr(d, 1, 0x42) // outside the port
	want := []Marker{{0x40, 10 * time.Millisecond}, {0x41, 25 * time.Millisecond}}
	got := d.Markers()
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("markers %v, want %v", got, want)
	}
	if len(seen) != 2 || seen[1] != want[1] {
		t.Fatalf("callback saw %v, want %v", seen, want)
	}
	if n := d.OtherWrites(); n != 3 {
		t.Fatalf("other writes %d, want 3", n)
	}
	expect(t, "read back", rd(d, 0), 0x50)
}

func TestDebugPortBounded(t *testing.T) {
	d := NewDebugPort(time.Now(), nil)
	for i := 0; i < MaxMarkers+10; i++ {
		wr(d, 0, MarkerLast)
	}
	if n := len(d.Markers()); n != MaxMarkers {
		t.Fatalf("kept %d markers, want %d", n, MaxMarkers)
	}
	if n := d.DroppedMarkers(); n != 10 {
		t.Fatalf("dropped %d markers, want 10", n)
	}
}

func TestDebugPortNoAllocs(t *testing.T) {
	d := NewDebugPort(time.Now(), func(byte, time.Duration) {})
	data := []byte{0x40}
	allocs := testing.AllocsPerRun(100, func() {
		data[0] ^= 0x40 // alternate marker and delay writes
		d.Write(0, data)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per write, want 0", allocs)
	}
}

func TestSink(t *testing.T) {
	var s Sink
	b := make([]byte, 4)
	s.Write(0, b)
	s.Read(3, b)
	if !bytes.Equal(b, []byte{0xff, 0xff, 0xff, 0xff}) {
		t.Fatalf("sink read % x", b)
	}
}
