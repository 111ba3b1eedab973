package console

import "fmt"

// DefaultEscapeChar is Ctrl-A, the escape character QEMU uses.
const DefaultEscapeChar = 0x01

// action is what an escape sequence asks the console to do.
type action uint8

const (
	actNone action = iota
	actQuit        // escape x
	actHelp        // escape h
)

// escaper recognises console commands in host input, one byte at a time:
// escape x quits, escape h shows help, escape escape sends one escape
// character to the guest, and escape followed by anything else sends both
// bytes. A zero escape character passes every byte through.
type escaper struct {
	char  byte
	armed bool // the previous byte was the escape character
}

// feed consumes b, appends the bytes meant for the guest to dst and
// returns the extended slice with the action b completed, if any.
func (e *escaper) feed(dst []byte, b byte) ([]byte, action) {
	if e.char == 0 {
		return append(dst, b), actNone
	}
	if !e.armed {
		if b == e.char {
			e.armed = true
			return dst, actNone
		}
		return append(dst, b), actNone
	}
	e.armed = false
	switch b {
	case e.char:
		return append(dst, b), actNone
	case 'x':
		return dst, actQuit
	case 'h':
		return dst, actHelp
	}
	return append(dst, e.char, b), actNone
}

// flush appends an escape character still waiting for its second byte,
// for when input ends.
func (e *escaper) flush(dst []byte) []byte {
	if e.armed {
		e.armed = false
		dst = append(dst, e.char)
	}
	return dst
}

// keyName spells a key as a person types it: Ctrl-A for 0x01.
func keyName(c byte) string {
	switch {
	case c == 0x7f:
		return "Ctrl-?"
	case c < 0x20:
		return "Ctrl-" + string(rune('@'+c))
	}
	return fmt.Sprintf("%q", rune(c))
}

// helpText lists the escape commands for escape character c.
func helpText(c byte) string {
	k := keyName(c)
	return fmt.Sprintf("\r\nConsole escapes:\r\n"+
		"  %[1]s x       quit\r\n"+
		"  %[1]s h       show this help\r\n"+
		"  %[1]s %[1]s  send %[1]s to the guest\r\n", k)
}
