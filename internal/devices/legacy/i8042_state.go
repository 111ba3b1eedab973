package legacy

import "fmt"

// I8042State is the guest-visible state of an I8042 as plain data.
type I8042State struct {
	CTR            byte
	OutputPort     byte
	SystemFlag     bool
	LastWasCommand bool
	// PendingCommand is a controller command waiting for its data byte.
	PendingCommand byte
	// KeyboardCommand is a keyboard command waiting for its parameter.
	KeyboardCommand byte
	KeyboardEnabled bool
	Port61          byte
	// Output is the unread output buffer, oldest byte first.
	Output []byte
}

// State returns a copy of the controller's state.
func (k *I8042) State() I8042State {
	k.mu.Lock()
	defer k.mu.Unlock()
	return I8042State{
		CTR:             k.ctr,
		OutputPort:      k.outPort,
		SystemFlag:      k.status&kbdStatSys != 0,
		LastWasCommand:  k.status&kbdStatCmd != 0,
		PendingCommand:  k.pending,
		KeyboardCommand: k.kbdParam,
		KeyboardEnabled: k.scanning,
		Port61:          k.port61,
		Output:          k.out.bytes(),
	}
}

// Restore replaces the controller's state with st and drives IRQ 1 to
// match. An output buffer longer than the controller holds is rejected
// with ErrBadState and leaves k unchanged.
func (k *I8042) Restore(st I8042State) error {
	if len(st.Output) > i8042OutSize {
		return fmt.Errorf("%w: i8042 output buffer holds %d bytes, at most %d", ErrBadState, len(st.Output), i8042OutSize)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ctr, k.outPort = st.CTR, st.OutputPort|0x01
	k.status = 0
	if st.SystemFlag {
		k.status |= kbdStatSys
	}
	if st.LastWasCommand {
		k.status |= kbdStatCmd
	}
	k.pending, k.kbdParam = validPending(st.PendingCommand), validKbdParam(st.KeyboardCommand)
	k.scanning = st.KeyboardEnabled
	k.port61 = st.Port61 & 0x1f
	k.out.load(st.Output)
	k.driveLine(k.level())
	return nil
}

// validPending keeps only controller commands that take a data byte.
func validPending(c byte) byte {
	switch c {
	case cmdWriteCTR, cmdWriteOutPort, cmdWriteKbdOut, cmdWriteAuxOut, cmdWriteAux:
		return c
	}
	return 0
}

// validKbdParam keeps only keyboard commands that take a parameter.
func validKbdParam(c byte) byte {
	switch c {
	case kbdSetLEDs, kbdScanSet, kbdTypemat:
		return c
	}
	return 0
}
