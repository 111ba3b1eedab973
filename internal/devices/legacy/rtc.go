package legacy

import (
	"sync"
	"time"
)

// Offsets from the RTC's base port (0x70).
const (
	rtcIndexPort = 0 // port 0x70: register index, bit 7 disables NMI
	rtcDataPort  = 1 // port 0x71: selected register
)

// CMOS register indexes.
const (
	rtcSeconds  = 0x00
	rtcMinutes  = 0x02
	rtcHours    = 0x04
	rtcWeekday  = 0x06
	rtcMonthDay = 0x07
	rtcMonth    = 0x08
	rtcYear     = 0x09
	rtcRegA     = 0x0a
	rtcRegB     = 0x0b
	rtcRegC     = 0x0c
	rtcRegD     = 0x0d
	rtcCentury  = 0x32
	rtcRAMSize  = 128
)

// Register A, B and D bits.
const (
	regAUIP     = 0x80 // update in progress
	regADefault = 0x26 // 32.768 kHz time base, 1024 Hz periodic rate
	regBSet     = 0x80 // updates halted while the guest sets the clock
	regBUIE     = 0x10 // update-ended interrupt enable
	regBBinary  = 0x04 // DM: binary rather than BCD
	regB24h     = 0x02 // 24-hour rather than 12-hour
	regBDefault = regB24h
	regDVRT     = 0x80 // valid RAM and time: the battery is good
	hourPM      = 0x80 // 12-hour mode PM flag in the hours register
	// uipWindow is how long before each second's update UIP reads set,
	// as on the MC146818 (244 µs).
	uipWindow = 244 * time.Microsecond
)

// RTC is an MC146818-style CMOS real-time clock with its 128 bytes of
// CMOS RAM. It keeps the host's time (from now, in UTC) plus whatever
// offset the guest sets by writing the clock. Periodic, alarm and
// update interrupts are not generated: register C reads zero.
type RTC struct {
	mu     sync.Mutex
	now    func() time.Time
	index  byte
	nmiOff bool
	regA   byte
	regB   byte
	ram    [rtcRAMSize]byte // alarm registers and general CMOS RAM
	offset time.Duration    // guest clock minus host clock
	held   time.Time        // the guest clock while regB.SET halts updates
}

// NewRTC returns a clock that reads time from now (time.Now if nil).
func NewRTC(now func() time.Time) *RTC {
	if now == nil {
		now = time.Now
	}
	return &RTC{now: now, regA: regADefault, regB: regBDefault}
}

// Read implements bus.Device.
func (r *RTC) Read(off uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range data {
		data[i] = 0xff
	}
	if len(data) > 0 && off == rtcDataPort {
		data[0] = r.readReg(r.index)
	}
	// The index port is write-only and reads as all ones.
}

// Write implements bus.Device.
func (r *RTC) Write(off uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch off {
	case rtcIndexPort:
		r.index = data[0] & 0x7f
		r.nmiOff = data[0]&0x80 != 0
	case rtcDataPort:
		r.writeReg(r.index, data[0])
	}
}

// NMIDisabled reports whether the guest masked NMIs through bit 7 of the
// index port.
func (r *RTC) NMIDisabled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nmiOff
}

// clock returns the guest's current time.
func (r *RTC) clock() time.Time {
	if r.regB&regBSet != 0 {
		return r.held
	}
	return r.now().UTC().Add(r.offset)
}

func (r *RTC) readReg(i byte) byte {
	switch i {
	case rtcSeconds, rtcMinutes, rtcHours, rtcWeekday, rtcMonthDay, rtcMonth, rtcYear, rtcCentury:
		return r.encodeField(i, r.clock())
	case rtcRegA:
		v := r.regA
		if r.regB&regBSet == 0 {
			// Set during the last 244 µs of each second only, so a guest
			// waiting for UIP to clear never waits long.
			if ns := r.clock().Nanosecond(); ns >= int(time.Second-uipWindow) {
				v |= regAUIP
			}
		}
		return v
	case rtcRegB:
		return r.regB
	case rtcRegC:
		return 0
	case rtcRegD:
		return regDVRT
	}
	return r.ram[i]
}

func (r *RTC) writeReg(i byte, v byte) {
	switch i {
	case rtcSeconds, rtcMinutes, rtcHours, rtcWeekday, rtcMonthDay, rtcMonth, rtcYear, rtcCentury:
		t := r.decodeField(i, v, r.clock())
		if r.regB&regBSet != 0 {
			r.held = t
		} else {
			r.offset = t.Sub(r.now().UTC())
		}
	case rtcRegA:
		r.regA = v &^ regAUIP
	case rtcRegB:
		r.writeRegB(v)
	case rtcRegC, rtcRegD:
		// Read-only.
	default:
		r.ram[i] = v
	}
}

func (r *RTC) writeRegB(v byte) {
	wasSet := r.regB&regBSet != 0
	if v&regBSet != 0 {
		v &^= regBUIE // setting SET clears the update-ended interrupt enable
	}
	switch isSet := v&regBSet != 0; {
	case isSet && !wasSet:
		r.held = r.clock()
	case !isSet && wasSet:
		// The clock restarts from the values the guest wrote.
		r.offset = r.held.Sub(r.now().UTC())
	}
	r.regB = v
}

// encodeField returns register i for time t in the current data mode.
func (r *RTC) encodeField(i byte, t time.Time) byte {
	var v int
	switch i {
	case rtcSeconds:
		v = t.Second()
	case rtcMinutes:
		v = t.Minute()
	case rtcHours:
		return r.encodeHour(t.Hour())
	case rtcWeekday:
		v = int(t.Weekday()) + 1 // Sunday is 1
	case rtcMonthDay:
		v = t.Day()
	case rtcMonth:
		v = int(t.Month())
	case rtcYear:
		v = t.Year() % 100
	case rtcCentury:
		v = t.Year() / 100 % 100
	}
	return r.encode(v)
}

func (r *RTC) encodeHour(h int) byte {
	if r.regB&regB24h != 0 {
		return r.encode(h)
	}
	var pm byte
	if h >= 12 {
		pm = hourPM
	}
	h %= 12
	if h == 0 {
		h = 12
	}
	return r.encode(h) | pm
}

// decodeField returns t with the field of register i set to v (in the
// current data mode). Out-of-range values roll over as time.Date
// normalises them; the weekday register is derived, so writes to it are
// ignored.
func (r *RTC) decodeField(i byte, v byte, t time.Time) time.Time {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	switch i {
	case rtcSeconds:
		sec = r.decode(v)
	case rtcMinutes:
		minute = r.decode(v)
	case rtcHours:
		hour = r.decodeHour(v)
	case rtcMonthDay:
		day = r.decode(v)
	case rtcMonth:
		month = time.Month(r.decode(v))
	case rtcYear:
		year = year/100*100 + r.decode(v)
	case rtcCentury:
		year = r.decode(v)*100 + year%100
	}
	return time.Date(year, month, day, hour, minute, sec, t.Nanosecond(), time.UTC)
}

func (r *RTC) decodeHour(v byte) int {
	if r.regB&regB24h != 0 {
		return r.decode(v)
	}
	h := r.decode(v&^hourPM) % 12
	if v&hourPM != 0 {
		h += 12
	}
	return h
}

func (r *RTC) encode(v int) byte {
	v %= 100
	if r.regB&regBBinary != 0 {
		return byte(v)
	}
	return byte(v/10<<4 | v%10)
}

func (r *RTC) decode(v byte) int {
	if r.regB&regBBinary != 0 {
		return int(v)
	}
	return int(v>>4)*10 + int(v&0x0f)
}
