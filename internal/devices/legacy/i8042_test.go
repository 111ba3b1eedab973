package legacy

import (
	"bytes"
	"testing"
)

// kbcCommand writes a controller command and returns the reply byte, if any.
func kbcCommand(k *I8042, cmd byte, param ...byte) (byte, bool) {
	wr(k, i8042Status, cmd)
	for _, p := range param {
		wr(k, i8042Data, p)
	}
	if rd(k, i8042Status)&kbdStatOBF == 0 {
		return 0, false
	}
	return rd(k, i8042Data), true
}

func TestI8042ResetPulse(t *testing.T) {
	resets := 0
	k := NewI8042(func() { resets++ })
	if rd(k, i8042Status)&0x02 != 0 {
		t.Fatal("input buffer reported full: reboot would wait")
	}
	wr(k, i8042Status, 0xfe)
	if resets != 1 {
		t.Fatalf("reset called %d times, want 1", resets)
	}
	wr(k, i8042Status, 0xff) // pulses no line
	if resets != 1 {
		t.Fatalf("0xff reset the machine")
	}
	kbcCommand(k, cmdWriteOutPort, 0x02) // reset line driven low
	if resets != 2 {
		t.Fatalf("output-port reset: reset called %d times, want 2", resets)
	}
	NewI8042(nil).Write(i8042Status, []byte{0xfe}) // nil reset is fine
}

func TestI8042Probe(t *testing.T) {
	k := NewI8042(nil)
	if v, ok := kbcCommand(k, cmdSelfTest); !ok || v != 0x55 {
		t.Fatalf("self test = %#x, %v; want 0x55", v, ok)
	}
	if v, ok := kbcCommand(k, cmdKbdTest); !ok || v != 0x00 {
		t.Fatalf("keyboard interface test = %#x, %v; want 0", v, ok)
	}
	ctr, ok := kbcCommand(k, cmdReadCTR)
	if !ok || ctr != ctrDefault {
		t.Fatalf("CTR = %#x, %v; want %#x", ctr, ok, ctrDefault)
	}
	if _, ok := kbcCommand(k, cmdWriteCTR, 0x65); ok {
		t.Fatal("write CTR produced output")
	}
	if v, _ := kbcCommand(k, cmdReadCTR); v != 0x65 {
		t.Fatalf("CTR after write = %#x, want 0x65", v)
	}
	kbcCommand(k, cmdKbdEnable)
	kbcCommand(k, cmdAuxEnable)
	if v, _ := kbcCommand(k, cmdReadCTR); v&(ctrKbdDis|ctrAuxDis) != 0 {
		t.Fatalf("CTR after enabling ports = %#x", v)
	}
	kbcCommand(k, cmdKbdDisable)
	kbcCommand(k, cmdAuxDisable)
	if v, _ := kbcCommand(k, cmdReadCTR); v&(ctrKbdDis|ctrAuxDis) != ctrKbdDis|ctrAuxDis {
		t.Fatalf("CTR after disabling ports = %#x", v)
	}
	if rd(k, i8042Status)&kbdStatUnlock == 0 {
		t.Fatal("key lock reported active")
	}
}

// TestI8042NoAux checks that Linux's AUX probe fails without a timeout:
// the loop command answers on the keyboard channel and the interface test
// reports an error.
func TestI8042NoAux(t *testing.T) {
	k := NewI8042(nil)
	wr(k, i8042Status, cmdWriteAuxOut)
	wr(k, i8042Data, 0x5a)
	st := rd(k, i8042Status)
	if st&kbdStatOBF == 0 || st&0x20 != 0 {
		t.Fatalf("status after AUX loop = %#x, want OBF without AUXDATA", st)
	}
	if v := rd(k, i8042Data); v != 0x5a {
		t.Fatalf("AUX loop returned %#x", v)
	}
	if v, ok := kbcCommand(k, cmdAuxTest); !ok || v == 0 || v == 0xfa || v == 0xff {
		t.Fatalf("AUX test = %#x, %v; want an error code", v, ok)
	}
}

func TestI8042Keyboard(t *testing.T) {
	k := NewI8042(nil)
	read := func() []byte {
		var got []byte
		for rd(k, i8042Status)&kbdStatOBF != 0 {
			got = append(got, rd(k, i8042Data))
		}
		return got
	}
	cases := []struct {
		in, want []byte
	}{
		{[]byte{kbdReset}, []byte{kbdAck, kbdBATOK}},
		{[]byte{kbdGetID}, []byte{kbdAck, 0xab, 0x41}},
		{[]byte{kbdSetLEDs, 0x07}, []byte{kbdAck, kbdAck}},
		{[]byte{kbdScanSet, 0x00}, []byte{kbdAck, kbdAck, 0x02}},
		{[]byte{kbdEcho}, []byte{kbdEcho}},
		{[]byte{kbdDisable, kbdEnable}, []byte{kbdAck, kbdAck}},
	}
	for _, c := range cases {
		for _, b := range c.in {
			wr(k, i8042Data, b)
		}
		if got := read(); !bytes.Equal(got, c.want) {
			t.Errorf("keyboard % x: replies % x, want % x", c.in, got, c.want)
		}
	}
}

func TestI8042CtrlAltDel(t *testing.T) {
	k := NewI8042(nil)
	line := &fakeLine{}
	k.SetKeyboardIRQ(line)
	expectLine(t, line, false)
	if err := k.SendCtrlAltDel(); err != nil {
		t.Fatal(err)
	}
	expectLine(t, line, true)
	var got []byte
	for rd(k, i8042Status)&kbdStatOBF != 0 {
		before := line.calls
		got = append(got, rd(k, i8042Data))
		if rd(k, i8042Status)&kbdStatOBF != 0 && line.calls != before+2 {
			t.Fatalf("line not pulsed between bytes (%d calls)", line.calls-before)
		}
	}
	if !bytes.Equal(got, ctrlAltDelSet1[:]) {
		t.Fatalf("scancodes % x, want % x", got, ctrlAltDelSet1)
	}
	expectLine(t, line, false)

	kbcCommand(k, cmdWriteCTR, ctrKbdInt) // translation off: set 2
	if err := k.SendCtrlAltDel(); err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for rd(k, i8042Status)&kbdStatOBF != 0 {
		got = append(got, rd(k, i8042Data))
	}
	if !bytes.Equal(got, ctrlAltDelSet2[:]) {
		t.Fatalf("set 2 scancodes % x, want % x", got, ctrlAltDelSet2)
	}
	k.SendCtrlAltDel()
	if err := k.SendCtrlAltDel(); err == nil {
		t.Fatal("overfull output buffer accepted")
	}
}

func TestI8042InterruptEnable(t *testing.T) {
	k := NewI8042(nil)
	line := &fakeLine{}
	k.SetKeyboardIRQ(line)
	kbcCommand(k, cmdWriteCTR, 0) // interrupts off
	wr(k, i8042Status, cmdReadCTR)
	expectLine(t, line, false)
	rd(k, i8042Data)
	kbcCommand(k, cmdWriteCTR, ctrKbdInt)
	wr(k, i8042Status, cmdReadCTR)
	expectLine(t, line, true)
	rd(k, i8042Data)
	expectLine(t, line, false)
}

func TestI8042Port61(t *testing.T) {
	k := NewI8042(nil)
	wr(k, i8042Port61, 0x03)
	a, b := rd(k, i8042Port61), rd(k, i8042Port61)
	if a&0x0f != 0x03 || a&0x20 == 0 || (a^b)&0x10 == 0 {
		t.Fatalf("port 0x61 reads %#x then %#x", a, b)
	}
	if v := rd(k, 2); v != 0xff {
		t.Fatalf("unused port reads %#x, want 0xff", v)
	}
}

func TestI8042StateRoundTrip(t *testing.T) {
	k := NewI8042(nil)
	wr(k, i8042Data, kbdSetLEDs)
	wr(k, i8042Status, cmdWriteCTR)
	st := k.State()
	d := NewI8042(nil)
	line := &fakeLine{}
	d.SetKeyboardIRQ(line)
	if err := d.Restore(st); err != nil {
		t.Fatal(err)
	}
	got := d.State()
	if !bytes.Equal(got.Output, st.Output) || got.CTR != st.CTR || got.PendingCommand != cmdWriteCTR ||
		got.KeyboardCommand != kbdSetLEDs {
		t.Fatalf("restored %+v, want %+v", got, st)
	}
	expectLine(t, line, true)
	if err := d.Restore(I8042State{Output: make([]byte, 17)}); err == nil {
		t.Fatal("oversized output accepted")
	}
}

func TestI8042NoAllocs(t *testing.T) {
	k := NewI8042(func() {})
	k.SetKeyboardIRQ(&fakeLine{})
	data := make([]byte, 1)
	allocs := testing.AllocsPerRun(1000, func() {
		data[0] = cmdReadCTR
		k.Write(i8042Status, data)
		k.Read(i8042Status, data)
		k.Read(i8042Data, data)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per access, want 0", allocs)
	}
}

// FuzzI8042 drives the controller with (kind|offset, value) pairs and
// checks its invariants.
func FuzzI8042(f *testing.F) {
	f.Add([]byte{0x04, 0xaa, 0x84, 0x00, 0x80, 0x00, 0x04, 0xfe})
	f.Add([]byte{0x04, 0x60, 0x00, 0x47, 0x00, 0xf2, 0x80, 0, 0x80, 0, 0xc0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		resets := 0
		k := NewI8042(func() { resets++ })
		line := &fakeLine{}
		k.SetKeyboardIRQ(line)
		var data [1]byte
		for i := 0; i+1 < len(ops); i += 2 {
			op, v := ops[i], ops[i+1]
			off := uint64(op & 7)
			before := resets
			switch op >> 6 {
			case 0:
				data[0] = v
				k.Write(off, data[:])
				if resets > before && off != i8042Status && off != i8042Data {
					t.Fatalf("op %d: write to offset %d reset the machine", i/2, off)
				}
			case 1, 2:
				k.Read(off, data[:])
			default:
				if v&1 == 0 {
					k.SendCtrlAltDel()
				} else if err := k.Restore(k.State()); err != nil {
					t.Fatalf("op %d: restoring own state: %v", i/2, err)
				}
			}
			k.mu.Lock()
			if k.out.len() > i8042OutSize {
				t.Fatalf("op %d: output buffer holds %d bytes", i/2, k.out.len())
			}
			if want := k.level(); k.lineHigh != want || line.level() != want {
				t.Fatalf("op %d: line %v, want %v", i/2, line.level(), want)
			}
			if (k.statusByte()&kbdStatOBF != 0) != (k.out.len() > 0) {
				t.Fatalf("op %d: OBF disagrees with the output buffer", i/2)
			}
			k.mu.Unlock()
		}
	})
}
