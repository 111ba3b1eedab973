package qmp

import (
	"bufio"
	"fmt"
	"io"
)

// Input limits. QEMU allows 64 MiB of tokens per message and 1024 levels of
// nesting; no QMP command needs a fraction of that, so Vireo caps a message
// at 1 MiB by default and keeps QEMU's nesting limit.
const (
	DefaultMaxMessage = 1 << 20
	maxNesting        = 1024
	shrinkAbove       = 64 << 10 // drop a framing buffer grown beyond this
)

type frameState uint8

const (
	stIdle      frameState = iota // between messages
	stContainer                   // inside an object or array
	stString                      // a string at the top level
	stScalar                      // a number or keyword at the top level
)

// framer splits a byte stream into top-level JSON texts, as QEMU's JSON
// streamer does: a text ends when its braces and brackets balance, so
// several messages may share one read and one message may span many, and
// no newline is needed. It holds at most max bytes of one message: a
// longer or too deeply nested message yields one error, and its remaining
// bytes are skipped without being stored.
type framer struct {
	r   *bufio.Reader
	max int

	state    frameState
	depth    int
	inString bool // inside a string within a container
	escape   bool // the previous byte was a backslash inside a string
	skipping bool // the current message broke a limit; drop its bytes
	buf      []byte
}

func newFramer(r io.Reader, max int) *framer {
	if max <= 0 {
		max = DefaultMaxMessage
	}
	return &framer{r: bufio.NewReaderSize(r, 32<<10), max: max}
}

// next returns the next complete message, or a parse error for a message
// that can be rejected without parsing (a stray byte, a broken limit), or
// the reader's error. The returned bytes are valid until the next call.
// A message cut off by the end of the stream is dropped.
func (f *framer) next() (msg []byte, perr *Error, err error) {
	if cap(f.buf) > shrinkAbove {
		f.buf = nil
	}
	f.buf = f.buf[:0]
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			return nil, nil, err
		}
		msg, perr, done := f.feed(c)
		if done {
			return msg, perr, nil
		}
	}
}

// feed consumes one byte; done reports that a message or an error is ready.
func (f *framer) feed(c byte) (msg []byte, perr *Error, done bool) {
	switch f.state {
	case stIdle:
		return f.start(c)
	case stString:
		f.keep(c)
		switch {
		case f.escape:
			f.escape = false
		case c == '\\':
			f.escape = true
		case c == '"':
			return f.finish()
		}
		return f.checkSize()
	case stScalar:
		if !isScalarByte(c) {
			// The delimiter belongs to what follows.
			_ = f.r.UnreadByte()
			return f.finish()
		}
		f.keep(c)
		return f.checkSize()
	}
	// stContainer
	f.keep(c)
	if f.inString {
		switch {
		case f.escape:
			f.escape = false
		case c == '\\':
			f.escape = true
		case c == '"':
			f.inString = false
		}
		return f.checkSize()
	}
	switch c {
	case '"':
		f.inString = true
	case '{', '[':
		f.depth++
		if f.depth > maxNesting && !f.skipping {
			f.skipping = true
			return nil, parseError("nesting depth limit exceeded"), true
		}
	case '}', ']':
		f.depth--
		if f.depth == 0 {
			return f.finish()
		}
	}
	return f.checkSize()
}

// start begins a message with its first byte.
func (f *framer) start(c byte) (msg []byte, perr *Error, done bool) {
	switch {
	case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		return nil, nil, false
	case c == '{' || c == '[':
		f.state, f.depth, f.inString, f.escape = stContainer, 1, false, false
	case c == '"':
		f.state, f.escape = stString, false
	case c == '}' || c == ']':
		return nil, parseError("expecting value"), true
	case isScalarByte(c):
		f.state = stScalar
	default:
		return nil, parseError(fmt.Sprintf("stray '%s'", printableByte(c))), true
	}
	f.keep(c)
	return nil, nil, false
}

// keep stores c unless the message is being skipped.
func (f *framer) keep(c byte) {
	if !f.skipping {
		f.buf = append(f.buf, c)
	}
}

func (f *framer) checkSize() (msg []byte, perr *Error, done bool) {
	if f.skipping || len(f.buf) <= f.max {
		return nil, nil, false
	}
	f.skipping = true
	f.buf = f.buf[:0]
	return nil, parseError(fmt.Sprintf("message longer than %d bytes", f.max)), true
}

// finish ends the current message and returns it, unless it was skipped.
func (f *framer) finish() (msg []byte, perr *Error, done bool) {
	skipped := f.skipping
	f.state, f.depth, f.inString, f.escape, f.skipping = stIdle, 0, false, false, false
	if skipped {
		return nil, nil, false
	}
	return f.buf, nil, true
}

// isScalarByte reports whether c can be part of a bare JSON number or
// keyword (true, false, null) or of a misspelt one.
func isScalarByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '+' || c == '.'
}

// printableByte shows c as itself when it is printable ASCII, else as \xNN.
func printableByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return string(rune(c))
	}
	return fmt.Sprintf(`\x%02x`, c)
}
