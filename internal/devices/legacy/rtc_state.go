package legacy

import "time"

// RTCState is the guest-visible state of an RTC as plain data.
type RTCState struct {
	Index       byte
	NMIDisabled bool
	RegA, RegB  byte
	// RAM holds the alarm registers and general-purpose CMOS bytes; the
	// clock and status registers in it are ignored.
	RAM [rtcRAMSize]byte
	// Offset is the guest clock minus the host clock.
	Offset time.Duration
	// Held is the guest clock while register B's SET bit halts updates.
	Held time.Time
}

// State returns a copy of the clock's state.
func (r *RTC) State() RTCState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RTCState{
		Index: r.index, NMIDisabled: r.nmiOff,
		RegA: r.regA, RegB: r.regB,
		RAM:    r.ram,
		Offset: r.offset,
		Held:   r.held,
	}
}

// Restore replaces the clock's state with st. Every value is acceptable
// (reserved bits are dropped), so it returns nil; the error keeps the
// signature uniform with the other devices.
func (r *RTC) Restore(st RTCState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.index, r.nmiOff = st.Index&0x7f, st.NMIDisabled
	r.regA, r.regB = st.RegA&^regAUIP, st.RegB
	r.ram = st.RAM
	r.offset = st.Offset
	r.held = st.Held.UTC()
	return nil
}
