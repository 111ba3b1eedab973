package migration

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// testLayout is a small two-region RAM layout with a hole.
var testLayout = []guestmem.RegionSpec{{GPA: 0, Size: 64 * PageSize}, {GPA: 1 << 20, Size: 32 * PageSize}}

func newMem(t testing.TB, specs []guestmem.RegionSpec) *guestmem.Memory {
	t.Helper()
	m, err := guestmem.New(specs, guestmem.Backing{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// allocFor returns a Receiver allocator that maps small layouts only.
func allocFor(t testing.TB) func([]guestmem.RegionSpec, []byte) (*guestmem.Memory, error) {
	return func(specs []guestmem.RegionSpec, _ []byte) (*guestmem.Memory, error) {
		var total uint64
		for _, s := range specs {
			total += s.Size
		}
		if total > 4<<20 {
			return nil, errors.New("test allocator: too much RAM")
		}
		return guestmem.New(specs, guestmem.Backing{})
	}
}

func page(b byte) []byte { return bytes.Repeat([]byte{b}, PageSize) }

// validStream is a complete two-pass stream over testLayout.
func validStream(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Header())
	must(w.Setup(testLayout, []byte(`{"cpus":1}`)))
	must(w.Pages(0, 3, append(page(1), page(2)...)))
	must(w.Pages(1, 31, page(3)))
	must(w.EndPass(1, 3))
	must(w.ZeroPages(0, 4, 1))
	must(w.Pages(0, 10, page(4)))
	must(w.EndPass(2, 2))
	must(w.State([]byte(`{"state":true}`)))
	must(w.End(2))
	return buf.Bytes()
}

func TestStreamRoundTrip(t *testing.T) {
	rc := &Receiver{Alloc: allocFor(t)}
	var passes []int
	rc.OnPass = func(p int, _ uint64) { passes = append(passes, p) }
	in, err := rc.Receive(bytes.NewReader(validStream(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Memory.Close()
	if string(in.Setup) != `{"cpus":1}` || string(in.State) != `{"state":true}` || in.Passes != 2 || in.Pages != 5 {
		t.Fatalf("incoming: setup %q state %q passes %d pages %d", in.Setup, in.State, in.Passes, in.Pages)
	}
	if len(passes) != 2 {
		t.Errorf("OnPass calls: %v", passes)
	}
	check := func(gpa uint64, want []byte) {
		t.Helper()
		got := make([]byte, PageSize)
		if err := in.Memory.ReadAt(got, gpa); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("page at %#x holds %#x..., want %#x...", gpa, got[0], want[0])
		}
	}
	check(3*PageSize, page(1))
	check(4*PageSize, page(0)) // zeroed by pass 2
	check(10*PageSize, page(4))
	check(1<<20+31*PageSize, page(3))
}

// TestStreamDamage checks that every kind of damage is refused with the
// right error and a useful message.
func TestStreamDamage(t *testing.T) {
	good := validStream(t)
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"empty", func(b []byte) []byte { return nil }, ErrTruncated},
		{"not a stream", func(b []byte) []byte { return []byte("GET / HTTP/1.1\r\n\r\n") }, ErrNotStream},
		{"other version", func(b []byte) []byte { b[8] = 9; return b }, ErrVersion},
		{"truncated in a page", func(b []byte) []byte { return b[:len(b)/2] }, ErrTruncated},
		{"truncated before end", func(b []byte) []byte { return b[:len(b)-5] }, ErrTruncated},
		{"flipped data bit", func(b []byte) []byte { b[len(b)/3] ^= 0x10; return b }, ErrChecksum},
		{"huge record length", func(b []byte) []byte {
			// The setup record's length field.
			b[streamHeaderSize+4], b[streamHeaderSize+7] = 0xff, 0xff
			return b
		}, ErrRecord},
		{"unknown kind", func(b []byte) []byte { b[streamHeaderSize] = 77; return b }, ErrRecord},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.mutate(bytes.Clone(good))
			_, err := (&Receiver{Alloc: allocFor(t)}).Receive(bytes.NewReader(b))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			t.Log(err)
		})
	}
}

// TestStreamProtocol checks the record order and page-range rules.
func TestStreamProtocol(t *testing.T) {
	type step func(w *Writer) error
	cases := []struct {
		name  string
		steps []step
		want  error
	}{
		{"pages before setup", []step{func(w *Writer) error { return w.Pages(0, 0, page(1)) }}, ErrProtocol},
		{"page outside region", []step{
			func(w *Writer) error { return w.Setup(testLayout, nil) },
			func(w *Writer) error { return w.Pages(1, 32, page(1)) },
		}, ErrRecord},
		{"run across region end", []step{
			func(w *Writer) error { return w.Setup(testLayout, nil) },
			func(w *Writer) error { return w.ZeroPages(0, 60, 5) },
		}, ErrRecord},
		{"no such region", []step{
			func(w *Writer) error { return w.Setup(testLayout, nil) },
			func(w *Writer) error { return w.Pages(2, 0, page(1)) },
		}, ErrRecord},
		{"checksums outside region", []step{
			func(w *Writer) error { return w.Setup(testLayout, nil) },
			func(w *Writer) error { return w.EndPass(1, 0) },
			func(w *Writer) error { return w.State([]byte("x")) },
			func(w *Writer) error { return w.Verify(1, 32, []uint32{0}) },
		}, ErrRecord},
		{"checksums of no such region", []step{
			func(w *Writer) error { return w.Setup(testLayout, nil) },
			func(w *Writer) error { return w.EndPass(1, 0) },
			func(w *Writer) error { return w.State([]byte("x")) },
			func(w *Writer) error { return w.Verify(2, 0, []uint32{0}) },
		}, ErrRecord},
		{"pass count lies", []step{
			func(w *Writer) error { return w.Setup(testLayout, nil) },
			func(w *Writer) error { return w.Pages(0, 0, page(1)) },
			func(w *Writer) error { return w.EndPass(1, 2) },
		}, ErrProtocol},
		{"pass skipped", []step{
			func(w *Writer) error { return w.Setup(testLayout, nil) },
			func(w *Writer) error { return w.EndPass(2, 0) },
		}, ErrProtocol},
		{"state before any pass", []step{
			func(w *Writer) error { return w.Setup(testLayout, nil) },
			func(w *Writer) error { return w.State([]byte("x")) },
		}, ErrProtocol},
		{"end before state", []step{
			func(w *Writer) error { return w.Setup(testLayout, nil) },
			func(w *Writer) error { return w.EndPass(1, 0) },
			func(w *Writer) error { return w.End(1) },
		}, ErrProtocol},
		{"pages after state", []step{
			func(w *Writer) error { return w.Setup(testLayout, nil) },
			func(w *Writer) error { return w.EndPass(1, 0) },
			func(w *Writer) error { return w.State([]byte("x")) },
			func(w *Writer) error { return w.Pages(0, 0, page(1)) },
		}, ErrProtocol},
		{"overlapping layout", []step{
			func(w *Writer) error {
				return w.Setup([]guestmem.RegionSpec{{GPA: 0, Size: 8 * PageSize}, {GPA: 4 * PageSize, Size: PageSize}}, nil)
			},
		}, ErrLayout},
		{"second setup", []step{
			func(w *Writer) error { return w.Setup(testLayout, nil) },
			func(w *Writer) error { return w.Setup(testLayout, nil) },
		}, ErrProtocol},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			if err := w.Header(); err != nil {
				t.Fatal(err)
			}
			for _, s := range c.steps {
				if err := s(w); err != nil {
					t.Fatal(err)
				}
			}
			w.Flush()
			_, err := (&Receiver{Alloc: allocFor(t)}).Receive(&buf)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			t.Log(err)
		})
	}
}

func TestWriterRefusesBadRecords(t *testing.T) {
	w := NewWriter(io.Discard)
	for name, err := range map[string]error{
		"partial page":   w.Pages(0, 0, make([]byte, 100)),
		"too long a run": w.Pages(0, 0, make([]byte, (MaxRunPages+1)*PageSize)),
		"zero run of 0":  w.ZeroPages(0, 0, 0),
		"no regions":     w.Setup(nil, nil),
		"empty state":    w.State(nil),
	} {
		if !errors.Is(err, ErrWrite) {
			t.Errorf("%s: %v, want ErrWrite", name, err)
		}
	}
}

func TestAck(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteAck(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if err := ReadAck(&buf); err != nil {
		t.Fatalf("ok ack: %v", err)
	}
	buf.Reset()
	WriteAck(&buf, errors.New("kvm: no room"))
	if err := ReadAck(&buf); !errors.Is(err, ErrRejected) || !bytes.Contains([]byte(err.Error()), []byte("kvm: no room")) {
		t.Fatalf("refusal: %v", err)
	}
	buf.Reset()
	WriteAck(&buf, nil)
	b := buf.Bytes()
	b[9] ^= 1
	if err := ReadAck(bytes.NewReader(b)); !errors.Is(err, ErrNoAck) {
		t.Fatalf("corrupt ack: %v", err)
	}
	if err := ReadAck(bytes.NewReader(nil)); !errors.Is(err, ErrNoAck) {
		t.Fatalf("no ack: %v", err)
	}
}

func TestParseURI(t *testing.T) {
	for in, want := range map[string]string{
		"tcp:127.0.0.1:4444":  "tcp 127.0.0.1:4444",
		"tcp::4444":           "tcp :4444",
		"tcp:[::1]:4444":      "tcp [::1]:4444",
		"unix:/run/vm.sock":   "unix /run/vm.sock",
		"tcp:localhost":       "",
		"exec:cat > /dev/nul": "",
		"unix:":               "",
		"nonsense":            "",
	} {
		u, err := ParseURI(in)
		got := ""
		if err == nil {
			got = u.Network + " " + u.Address
		} else if !errors.Is(err, ErrURI) {
			t.Errorf("%q: %v is not ErrURI", in, err)
		}
		if got != want {
			t.Errorf("ParseURI(%q) = %q (%v), want %q", in, got, err, want)
		}
	}
}

// TestStreamVerify: checksums that match pass; one that does not fails
// the stream with the page's address.
func TestStreamVerify(t *testing.T) {
	build := func(corrupt bool) []byte {
		good := validStream(t)
		end := len(good) - (recordHeaderSize + endSize + crcSize) // before End
		var buf bytes.Buffer
		buf.Write(good[:end])
		w := NewWriter(&buf)
		sums := make([]uint32, 64)
		zero := PageChecksum(page(0))
		for i := range sums {
			sums[i] = zero
		}
		sums[3], sums[10] = PageChecksum(page(1)), PageChecksum(page(4))
		if corrupt {
			sums[10] = PageChecksum(page(5))
		}
		w.Verify(0, 0, sums)
		w.End(2)
		return buf.Bytes()
	}
	in, err := (&Receiver{Alloc: allocFor(t)}).Receive(bytes.NewReader(build(false)))
	if err != nil {
		t.Fatal(err)
	}
	in.Memory.Close()
	if in.Verified != 64 {
		t.Errorf("verified %d pages", in.Verified)
	}
	_, err = (&Receiver{Alloc: allocFor(t)}).Receive(bytes.NewReader(build(true)))
	if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "0xa000") {
		t.Fatalf("corrupt page: %v", err)
	}
	t.Log(err)
}
