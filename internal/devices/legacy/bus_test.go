package legacy

import (
	"io"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/bus"
)

var (
	_ bus.Device = (*Serial)(nil)
	_ bus.Device = (*I8042)(nil)
	_ bus.Device = (*RTC)(nil)
	_ bus.Device = (*DebugPort)(nil)
	_ bus.Device = Sink{}
)

// TestOnBus maps the devices at their PC ports and reaches each one.
func TestOnBus(t *testing.T) {
	var b bus.Bus
	s := NewSerial(nil, io.Discard)
	defer s.Close()
	resets := 0
	devs := []struct {
		dev        bus.Device
		base, size uint64
	}{
		{s, 0x3f8, SerialSize},
		{NewI8042(func() { resets++ }), 0x60, I8042Size},
		{NewRTC(func() time.Time { return rtcEpoch }), 0x70, RTCSize},
		{NewDebugPort(time.Now(), nil), 0x80, DebugPortSize},
		{Sink{}, 0x87, 1},
	}
	for _, d := range devs {
		if err := b.Insert(d.dev, d.base, d.size); err != nil {
			t.Fatal(err)
		}
	}
	var v [1]byte
	b.Read(0x3fd, v[:])
	expect(t, "COM1 LSR", v[0], lsrTHRE|lsrTEMT)
	b.Write(0x70, []byte{rtcYear})
	b.Read(0x71, v[:])
	expect(t, "CMOS year", v[0], 0x24)
	b.Write(0x64, []byte{0xfe})
	if resets != 1 {
		t.Fatal("reset through port 0x64 not seen")
	}
	b.Read(0x87, v[:])
	expect(t, "sink", v[0], 0xff)
}
