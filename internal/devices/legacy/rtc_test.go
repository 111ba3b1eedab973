package legacy

import (
	"testing"
	"time"
)

// testClock is a settable host clock.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func rtcRead(r *RTC, reg byte) byte {
	wr(r, rtcIndexPort, reg)
	return rd(r, rtcDataPort)
}

func rtcWrite(r *RTC, reg, v byte) {
	wr(r, rtcIndexPort, reg)
	wr(r, rtcDataPort, v)
}

var rtcEpoch = time.Date(2024, time.March, 9, 13, 45, 56, 0, time.UTC) // a Saturday

func TestRTCBCD(t *testing.T) {
	c := &testClock{rtcEpoch}
	r := NewRTC(c.now)
	want := map[byte]byte{
		rtcSeconds: 0x56, rtcMinutes: 0x45, rtcHours: 0x13, rtcWeekday: 0x07,
		rtcMonthDay: 0x09, rtcMonth: 0x03, rtcYear: 0x24, rtcCentury: 0x20,
		rtcRegA: regADefault, rtcRegB: regB24h, rtcRegC: 0, rtcRegD: regDVRT,
	}
	for reg, v := range want {
		expect(t, "register", rtcRead(r, reg), v)
	}
}

func TestRTCBinaryAnd12Hour(t *testing.T) {
	c := &testClock{rtcEpoch}
	r := NewRTC(c.now)
	rtcWrite(r, rtcRegB, regBBinary|regB24h)
	expect(t, "binary seconds", rtcRead(r, rtcSeconds), 56)
	expect(t, "binary year", rtcRead(r, rtcYear), 24)
	rtcWrite(r, rtcRegB, 0) // BCD, 12-hour
	expect(t, "12h hour", rtcRead(r, rtcHours), 0x01|hourPM)
	c.t = time.Date(2024, 3, 9, 0, 30, 0, 0, time.UTC)
	expect(t, "12h midnight", rtcRead(r, rtcHours), 0x12)
	c.t = time.Date(2024, 3, 9, 12, 30, 0, 0, time.UTC)
	expect(t, "12h noon", rtcRead(r, rtcHours), 0x12|hourPM)
	// Writing 11 PM in 12-hour mode.
	rtcWrite(r, rtcHours, 0x11|hourPM)
	rtcWrite(r, rtcRegB, regB24h)
	expect(t, "24h after 12h write", rtcRead(r, rtcHours), 0x23)
}

func TestRTCUpdateInProgress(t *testing.T) {
	c := &testClock{rtcEpoch.Add(time.Second - 100*time.Microsecond)}
	r := NewRTC(c.now)
	expect(t, "A near the update", rtcRead(r, rtcRegA)&regAUIP, regAUIP)
	c.t = rtcEpoch.Add(time.Second)
	expect(t, "A after the update", rtcRead(r, rtcRegA)&regAUIP, 0)
	c.t = rtcEpoch.Add(500 * time.Millisecond)
	expect(t, "A mid-second", rtcRead(r, rtcRegA)&regAUIP, 0)
	// Writes cannot set UIP.
	rtcWrite(r, rtcRegA, 0xa6)
	expect(t, "A after write", rtcRead(r, rtcRegA), 0x26)
}

func TestRTCSetClock(t *testing.T) {
	c := &testClock{rtcEpoch}
	r := NewRTC(c.now)
	rtcWrite(r, rtcRegB, regBSet|regB24h|regBUIE)
	expect(t, "B", rtcRead(r, rtcRegB), regBSet|regB24h) // SET clears UIE
	rtcWrite(r, rtcYear, 0x30)
	rtcWrite(r, rtcMonth, 0x12)
	rtcWrite(r, rtcMonthDay, 0x31)
	rtcWrite(r, rtcHours, 0x23)
	rtcWrite(r, rtcMinutes, 0x59)
	rtcWrite(r, rtcSeconds, 0x50)
	c.t = c.t.Add(time.Hour) // halted: no change while SET
	expect(t, "held seconds", rtcRead(r, rtcSeconds), 0x50)
	expect(t, "UIP while SET", rtcRead(r, rtcRegA)&regAUIP, 0)
	rtcWrite(r, rtcRegB, regB24h)
	c.t = c.t.Add(15 * time.Second)
	for reg, v := range map[byte]byte{rtcSeconds: 0x05, rtcMinutes: 0x00, rtcHours: 0x00,
		rtcMonthDay: 0x01, rtcMonth: 0x01, rtcYear: 0x31, rtcCentury: 0x20, rtcWeekday: 0x04} {
		expect(t, "after setting", rtcRead(r, reg), v)
	}
}

func TestRTCWriteField(t *testing.T) {
	c := &testClock{rtcEpoch}
	r := NewRTC(c.now)
	rtcWrite(r, rtcMinutes, 0x00)
	c.t = c.t.Add(time.Minute)
	expect(t, "minutes", rtcRead(r, rtcMinutes), 0x01)
	expect(t, "hours", rtcRead(r, rtcHours), 0x13)
	rtcWrite(r, rtcWeekday, 0x03) // derived: ignored
	expect(t, "weekday", rtcRead(r, rtcWeekday), 0x07)
	rtcWrite(r, rtcCentury, 0x21)
	expect(t, "century", rtcRead(r, rtcCentury), 0x21)
	expect(t, "year", rtcRead(r, rtcYear), 0x24)
	expect(t, "weekday in 2124", rtcRead(r, rtcWeekday), 0x05)
}

func TestRTCRAMAndIndex(t *testing.T) {
	r := NewRTC(nil)
	rtcWrite(r, 0x20, 0xab)
	rtcWrite(r, 0x01, 0x30) // seconds alarm
	expect(t, "RAM", rtcRead(r, 0x20), 0xab)
	expect(t, "alarm", rtcRead(r, 0x01), 0x30)
	wr(r, rtcIndexPort, 0x80|0x20)
	if !r.NMIDisabled() {
		t.Fatal("NMI mask bit ignored")
	}
	expect(t, "RAM through masked index", rd(r, rtcDataPort), 0xab)
	expect(t, "index port", rd(r, rtcIndexPort), 0xff)
	rtcWrite(r, rtcRegD, 0)
	expect(t, "D", rtcRead(r, rtcRegD), regDVRT)
}

func TestRTCStateRoundTrip(t *testing.T) {
	c := &testClock{rtcEpoch}
	r := NewRTC(c.now)
	rtcWrite(r, rtcYear, 0x30)
	rtcWrite(r, 0x40, 0x11)
	wr(r, rtcIndexPort, 0x80|rtcYear)
	d := NewRTC(c.now)
	if err := d.Restore(r.State()); err != nil {
		t.Fatal(err)
	}
	if d.State() != r.State() {
		t.Fatalf("state %+v, want %+v", d.State(), r.State())
	}
	expect(t, "year", rd(d, rtcDataPort), 0x30)
	expect(t, "RAM", rtcRead(d, 0x40), 0x11)
}

func TestRTCNoAllocs(t *testing.T) {
	r := NewRTC(nil)
	data := make([]byte, 1)
	allocs := testing.AllocsPerRun(1000, func() {
		data[0] = rtcSeconds
		r.Write(rtcIndexPort, data)
		r.Read(rtcDataPort, data)
		data[0] = rtcRegA
		r.Write(rtcIndexPort, data)
		r.Read(rtcDataPort, data)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per access, want 0", allocs)
	}
}

func validBCD(v byte) bool { return v&0x0f <= 9 && v>>4 <= 9 }

// FuzzRTC drives the clock with (kind|offset, value) pairs while host time
// advances, checking that BCD registers stay BCD and UIP never sticks.
func FuzzRTC(f *testing.F) {
	f.Add([]byte{0x00, 0x0b, 0x01, 0x86, 0x00, 0x09, 0x01, 0x99, 0x00, 0x0b, 0x01, 0x02, 0x41, 0x00})
	f.Add([]byte{0x00, 0x04, 0x01, 0xff, 0x00, 0x32, 0x01, 0xff, 0x41, 0x00})
	f.Fuzz(func(t *testing.T, ops []byte) {
		c := &testClock{rtcEpoch}
		r := NewRTC(c.now)
		var data [1]byte
		for i := 0; i+1 < len(ops); i += 2 {
			op, v := ops[i], ops[i+1]
			c.t = c.t.Add(time.Duration(v) * 7919 * time.Microsecond)
			off := uint64(op & 1)
			if op&0x40 == 0 {
				data[0] = v
				r.Write(off, data[:])
				continue
			}
			r.Read(off, data[:])
			r.mu.Lock()
			reg, b := r.index, r.regB
			r.mu.Unlock()
			if off != rtcDataPort {
				continue
			}
			switch reg {
			case rtcSeconds, rtcMinutes, rtcMonthDay, rtcMonth, rtcYear, rtcCentury, rtcWeekday:
				if b&regBBinary == 0 && !validBCD(data[0]) {
					t.Fatalf("op %d: register %#x = %#x is not BCD", i/2, reg, data[0])
				}
			case rtcHours:
				if b&regBBinary == 0 && !validBCD(data[0]&^hourPM) {
					t.Fatalf("op %d: hours %#x are not BCD", i/2, data[0])
				}
			case rtcRegA:
				if data[0]&regAUIP == 0 {
					break
				}
				c.t = c.t.Add(time.Millisecond)
				r.Read(off, data[:])
				if data[0]&regAUIP != 0 {
					t.Fatalf("op %d: UIP still set 1 ms later", i/2)
				}
			}
		}
	})
}
