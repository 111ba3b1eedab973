package legacy

import (
	"sync"
	"time"
)

// Boot-marker values: guests write 0x40..0x4f to the debug port to mark
// boot milestones (Cloud Hypervisor's convention uses 0x40 and 0x41).
const (
	MarkerFirst = 0x40
	MarkerLast  = 0x4f
	// MaxMarkers bounds the markers kept; later ones are counted only.
	MaxMarkers = 256
)

// Marker is one boot marker: the value written and when, measured from
// the start time given to NewDebugPort.
type Marker struct {
	Value byte
	Since time.Duration
}

// DebugPort is the one-byte POST/debug port (0x80). Linux also writes it
// for I/O delays, so only marker values are recorded; other writes are
// counted. Reads return the last value written.
type DebugPort struct {
	mu       sync.Mutex
	start    time.Time
	now      func() time.Time
	onMarker func(value byte, sinceStart time.Duration)
	markers  []Marker
	dropped  uint64
	other    uint64
	last     byte
}

// NewDebugPort returns a debug port that timestamps markers relative to
// start and, if onMarker is not nil, reports each one to it. onMarker runs
// on the writing vCPU's goroutine, outside the port's lock: keep it short.
func NewDebugPort(start time.Time, onMarker func(value byte, sinceStart time.Duration)) *DebugPort {
	return &DebugPort{
		start:    start,
		now:      time.Now,
		onMarker: onMarker,
		markers:  make([]Marker, 0, MaxMarkers),
	}
}

// Read implements bus.Device.
func (d *DebugPort) Read(off uint64, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range data {
		data[i] = 0xff
	}
	if off == 0 && len(data) > 0 {
		data[0] = d.last
	}
}

// Write implements bus.Device. Only the low byte of a wider write counts.
func (d *DebugPort) Write(off uint64, data []byte) {
	if off != 0 || len(data) == 0 {
		return
	}
	v := data[0]
	if v < MarkerFirst || v > MarkerLast {
		d.mu.Lock()
		d.last = v
		d.other++
		d.mu.Unlock()
		return
	}
	since := d.now().Sub(d.start)
	d.mu.Lock()
	d.last = v
	if len(d.markers) < cap(d.markers) {
		d.markers = append(d.markers, Marker{Value: v, Since: since})
	} else {
		d.dropped++
	}
	d.mu.Unlock()
	if d.onMarker != nil {
		d.onMarker(v, since)
	}
}

// Markers returns a copy of the markers recorded so far, oldest first.
func (d *DebugPort) Markers() []Marker {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Marker(nil), d.markers...)
}

// OtherWrites returns how many writes carried values outside the marker
// range (I/O delays and POST codes).
func (d *DebugPort) OtherWrites() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.other
}

// DroppedMarkers returns how many markers arrived after MaxMarkers were
// recorded; they were still passed to onMarker.
func (d *DebugPort) DroppedMarkers() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dropped
}
