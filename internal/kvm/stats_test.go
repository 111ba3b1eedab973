package kvm

import "testing"

// TestStatDesc decodes descriptor flags as include/uapi/linux/kvm.h
// lays them out: type in bits 0-3, unit in 4-7, base in 8-11.
func TestStatDesc(t *testing.T) {
	for _, c := range []struct {
		flags     uint32
		typ, unit string
		base      int
		histogram bool
	}{
		{0, "cumulative", "", 10, false},
		{1 | 4<<4, "instant", "boolean", 10, false},
		{2 | 1<<4 | 1<<8, "peak", "bytes", 2, false},
		{3 | 3<<4, "linear-histogram", "cycles", 10, true},
		{4 | 2<<4, "log2-histogram", "seconds", 10, true},
		{9 | 9<<4, "", "", 10, false},
	} {
		d := StatDesc{Flags: c.flags}
		if d.Type() != c.typ || d.Unit() != c.unit || d.Base() != c.base || d.Histogram() != c.histogram {
			t.Errorf("flags %#x: type %q unit %q base %d histogram %v, want %q %q %d %v",
				c.flags, d.Type(), d.Unit(), d.Base(), d.Histogram(), c.typ, c.unit, c.base, c.histogram)
		}
	}
}
