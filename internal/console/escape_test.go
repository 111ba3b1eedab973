package console

import (
	"bytes"
	"testing"
)

// run feeds in through an escaper and returns the guest bytes and actions.
func run(char byte, in []byte) ([]byte, []action) {
	e := escaper{char: char}
	var out []byte
	var acts []action
	for _, b := range in {
		var a action
		out, a = e.feed(out, b)
		if a != actNone {
			acts = append(acts, a)
		}
	}
	return out, acts
}

func TestEscaper(t *testing.T) {
	cases := []struct {
		name string
		in   string
		out  string
		acts []action
	}{
		{"plain", "hello\r\n", "hello\r\n", nil},
		{"quit", "ab\x01xcd", "abcd", []action{actQuit}},
		{"help", "\x01h", "", []action{actHelp}},
		{"literal escape", "\x01\x01", "\x01", nil},
		{"other", "\x01c\x01X", "\x01c\x01X", nil},
		{"escape then escape then x", "\x01\x01x", "\x01x", nil},
		{"split", "\x01", "", nil},
		{"ctrl-c passes", "\x03", "\x03", nil},
	}
	for _, c := range cases {
		out, acts := run(DefaultEscapeChar, []byte(c.in))
		if string(out) != c.out || len(acts) != len(c.acts) {
			t.Errorf("%s: got %q %v, want %q %v", c.name, out, acts, c.out, c.acts)
			continue
		}
		for i := range acts {
			if acts[i] != c.acts[i] {
				t.Errorf("%s: action %d = %v, want %v", c.name, i, acts[i], c.acts[i])
			}
		}
	}
}

func TestEscaperDisabled(t *testing.T) {
	in := []byte("\x01x\x01h\x01\x01")
	out, acts := run(0, in)
	if !bytes.Equal(out, in) || len(acts) != 0 {
		t.Fatalf("disabled escaper changed %q into %q %v", in, out, acts)
	}
}

func TestEscaperFlush(t *testing.T) {
	e := escaper{char: DefaultEscapeChar}
	out, _ := e.feed(nil, DefaultEscapeChar)
	out = e.flush(out)
	if string(out) != "\x01" {
		t.Fatalf("flush gave %q, want the held escape", out)
	}
	if out = e.flush(nil); len(out) != 0 {
		t.Fatalf("second flush gave %q", out)
	}
}

func TestHelpText(t *testing.T) {
	h := helpText(DefaultEscapeChar)
	for _, want := range []string{"Ctrl-A x", "Ctrl-A h", "Ctrl-A Ctrl-A"} {
		if !bytes.Contains([]byte(h), []byte(want)) {
			t.Errorf("help lacks %q:\n%s", want, h)
		}
	}
	if keyName(0x1d) != "Ctrl-]" || keyName('~') != "'~'" {
		t.Errorf("key names: %q %q", keyName(0x1d), keyName('~'))
	}
}

// escapeForGuest doubles escape characters so a guest byte stream passes
// through the escaper unchanged.
func escapeForGuest(char byte, g []byte) []byte {
	var out []byte
	for _, b := range g {
		if b == char {
			out = append(out, char)
		}
		out = append(out, b)
	}
	return out
}

func FuzzEscape(f *testing.F) {
	f.Add(byte(1), []byte("ab\x01xcd"))
	f.Add(byte(1), []byte("\x01\x01\x01h\x01"))
	f.Add(byte('x'), []byte("xxhx"))
	f.Add(byte(0), []byte("\x01x"))
	f.Fuzz(func(t *testing.T, char byte, in []byte) {
		out, acts := run(char, in)
		if len(out) > len(in)+1 {
			t.Fatalf("%d input bytes gave %d output bytes", len(in), len(out))
		}
		if char == 0 || bytes.IndexByte(in, char) < 0 {
			if !bytes.Equal(out, in) || len(acts) != 0 {
				t.Fatalf("input without escapes changed: %q -> %q %v", in, out, acts)
			}
		}
		// Doubling escapes makes any byte stream reach the guest intact.
		enc := escapeForGuest(char, in)
		if char == 0 {
			enc = in
		}
		round, acts := run(char, enc)
		if !bytes.Equal(round, in) || len(acts) != 0 {
			t.Fatalf("escaped %q came back as %q %v", in, round, acts)
		}
	})
}
