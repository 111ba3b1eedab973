package qmp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// frames runs the framer over input and lists what it yields: messages
// as themselves, errors as "ERR:desc".
func frames(t *testing.T, input string, max int) []string {
	t.Helper()
	f := newFramer(strings.NewReader(input), max)
	var out []string
	for {
		msg, perr, err := f.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if perr != nil {
			out = append(out, "ERR:"+perr.Desc)
			continue
		}
		out = append(out, string(msg))
	}
}

func TestFramer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`{"a":1}{"b":2}`, []string{`{"a":1}`, `{"b":2}`}},
		{" \r\n\t{\"a\":[1,{}]}\r\n", []string{`{"a":[1,{}]}`}},
		{`{"s":"}{\"]"}`, []string{`{"s":"}{\"]"}`}},
		{`{"s":"\\"}[]`, []string{`{"s":"\\"}`, `[]`}},
		{`"top"{}`, []string{`"top"`, `{}`}},
		{`"a\"b" `, []string{`"a\"b"`}},
		{`12 true null{}`, []string{`12`, `true`, `null`, `{}`}},
		{`garbage{}`, []string{`garbage`, `{}`}},
		{`}]{}`, []string{"ERR:JSON parse error, expecting value", "ERR:JSON parse error, expecting value", `{}`}},
		{"@\x01{}", []string{"ERR:JSON parse error, stray '@'", `ERR:JSON parse error, stray '\x01'`, `{}`}},
		{`{"a":1`, nil},                  // cut off by EOF: dropped
		{`{"a":1]`, []string{`{"a":1]`}}, // balanced count; the parser rejects it
		{`nul`, nil},                     // a scalar needs a delimiter
	} {
		got := frames(t, tc.in, 0)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFramerLimits(t *testing.T) {
	long := `{"x":"` + strings.Repeat("y", 100) + `"}`
	got := frames(t, long+`{}`+`"`+strings.Repeat("z", 100)+`"`+`{}`+strings.Repeat("9", 100)+` {}`, 50)
	want := []string{
		"ERR:JSON parse error, message longer than 50 bytes", `{}`,
		"ERR:JSON parse error, message longer than 50 bytes", `{}`,
		"ERR:JSON parse error, message longer than 50 bytes", `{}`,
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q\nwant %q", got, want)
	}
	deep := strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1)
	got = frames(t, deep+`{}`, 1<<20)
	want = []string{"ERR:JSON parse error, nesting depth limit exceeded", `{}`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("deep: got %q", got)
	}
	ok := strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting)
	if got := frames(t, ok, 1<<20); len(got) != 1 || got[0] != ok {
		t.Errorf("nesting at the limit was refused: %.40q", got)
	}
}

// A 10 MiB message never makes the framer hold more than about the cap.
func TestFramerMemoryBound(t *testing.T) {
	const max = 1 << 20
	in := io.MultiReader(
		strings.NewReader(`{"execute":"x","arguments":{"s":"`),
		io.LimitReader(repeatReader('A'), 10<<20),
		strings.NewReader(`"}}{"id":1}`),
	)
	f := newFramer(in, max)
	var peak int
	var got []string
	for {
		msg, perr, err := f.next()
		if cap(f.buf) > peak {
			peak = cap(f.buf)
		}
		if err != nil {
			break
		}
		if perr != nil {
			got = append(got, "ERR")
		} else {
			got = append(got, string(msg))
		}
	}
	if strings.Join(got, "|") != `ERR|{"id":1}` {
		t.Errorf("got %q", got)
	}
	if peak > 2*max+64<<10 {
		t.Errorf("framer buffer grew to %d bytes for a 10 MiB message (cap %d)", peak, max)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestCheckJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" for valid
	}{
		{`{}`, ""},
		{`{"a":{"a":1},"b":[{"a":1},{"a":2}]}`, ""},
		{`[{"a":1,"a":2}]`, "JSON parse error, duplicate key"},
		{`{"a":{},"a":[]}`, "JSON parse error, duplicate key"},
		{`true`, ""},
		{`nope`, "JSON parse error, invalid keyword 'nope'"},
		{`1 2`, "JSON parse error, more than one value in a message"},
		{`{"a":1}{}`, "JSON parse error, more than one value in a message"},
		{`{"a":1`, "JSON parse error, premature end of input"},
		{``, "JSON parse error, premature end of input"},
	} {
		e := checkJSON([]byte(tc.in))
		got := ""
		if e != nil {
			got = e.Desc
		}
		if got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSpaceJSON(t *testing.T) {
	in := `{"a":[1,2],"b":"x:y,z\"q","c":{}}`
	want := `{"a": [1, 2], "b": "x:y,z\"q", "c": {}}`
	if got := string(spaceJSON([]byte(in))); got != want {
		t.Errorf("got %s", got)
	}
	if !bytes.HasSuffix(encode(empty{}, nil), []byte("}\r\n")) {
		t.Error("encode does not end with CRLF")
	}
}
