package console

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestOpenSpecs(t *testing.T) {
	for _, spec := range []string{"stdio", "virtio", "none"} {
		c, err := Open(spec)
		if err != nil {
			t.Fatalf("Open(%q): %v", spec, err)
		}
		if c.Virtio() != (spec == "virtio") {
			t.Errorf("Open(%q).Virtio() = %v", spec, c.Virtio())
		}
		if err := c.Close(); err != nil {
			t.Fatalf("Close(%q): %v", spec, err)
		}
	}
	for _, spec := range []string{"", "file:", "tty", "stdio:x", "File:x", "virtio:x"} {
		_, err := Open(spec)
		if !errors.Is(err, ErrSpec) {
			t.Errorf("Open(%q) = %v, want ErrSpec", spec, err)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%q) error spans lines: %q", spec, err)
		}
		if ParseSpec(spec) == nil {
			t.Errorf("ParseSpec(%q) accepted it", spec)
		}
	}
	if _, err := Open("file:" + filepath.Join(t.TempDir(), "missing", "log")); err == nil {
		t.Error("file in a missing directory opened")
	}
}

func TestFileOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Open("file:" + path)
	if err != nil {
		t.Fatal(err)
	}
	c.Start(func(p []byte) int { t.Error("file console delivered input"); return len(p) }, nil)
	c.Output().Write([]byte("boot\r\n"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != "boot\r\n" {
		t.Fatalf("file holds %q", got)
	}
}

// guest collects delivered bytes, taking at most limit per call.
type guest struct {
	mu    sync.Mutex
	got   []byte
	limit int
	calls int
}

func (g *guest) deliver(p []byte) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	n := min(len(p), g.limit)
	if g.calls%3 == 0 {
		n = 0 // the guest's buffer is full now and then
	}
	g.got = append(g.got, p[:n]...)
	return n
}

func (g *guest) bytes() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]byte(nil), g.got...)
}

func startPipe(t *testing.T, g *guest, quit func(), opts ...Option) (*Console, *os.File, *syncBuffer) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	out := &syncBuffer{}
	c, err := Open("stdio", append([]Option{WithInput(r), WithOutput(out)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if quit == nil {
		quit = func() { t.Error("unexpected quit") }
	}
	c.Start(g.deliver, quit)
	return c, w, out
}

func waitDone(t *testing.T, c *Console) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("input goroutine still running")
	}
}

func TestStdioInputAndEscapes(t *testing.T) {
	g := &guest{limit: 3}
	quits := 0
	c, w, out := startPipe(t, g, func() { quits++ })
	w.Write([]byte("ab\x01\x01c\x01zd\x01h"))
	w.Write([]byte("ef\x01xgh"))
	waitDone(t, c)
	if quits != 1 {
		t.Fatalf("quit called %d times, want 1", quits)
	}
	// Bytes before the quit may still be pending; those after are not sent.
	if got := g.bytes(); !bytes.HasPrefix([]byte("ab\x01c\x01zdef"), got) {
		t.Fatalf("guest got %q", got)
	}
	if !strings.Contains(out.String(), "Ctrl-A x") {
		t.Fatalf("help not printed: %q", out.String())
	}
}

func TestStdioEOFDeliversEverything(t *testing.T) {
	g := &guest{limit: 16}
	c, w, _ := startPipe(t, g, nil)
	want := bytes.Repeat([]byte("0123456789"), 200)
	want = append(want, DefaultEscapeChar) // a trailing escape is sent at EOF
	w.Write(want)
	w.Close()
	waitDone(t, c)
	if got := g.bytes(); !bytes.Equal(got, want) {
		t.Fatalf("guest got %d bytes, want %d", len(got), len(want))
	}
}

func TestStdioEscapesDisabled(t *testing.T) {
	g := &guest{limit: 100}
	c, w, _ := startPipe(t, g, nil, WithEscapeChar(0))
	w.Write([]byte("\x01x\x01h"))
	w.Close()
	waitDone(t, c)
	if got := g.bytes(); string(got) != "\x01x\x01h" {
		t.Fatalf("guest got %q", got)
	}
}

// TestQuitWhileGuestStuck checks that the escape works even when the guest
// takes no input at all.
func TestQuitWhileGuestStuck(t *testing.T) {
	quit := make(chan struct{})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	c, err := Open("stdio", WithInput(r), WithOutput(&syncBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Start(func([]byte) int { return 0 }, func() { close(quit) })
	w.Write([]byte("typed ahead\x01x"))
	select {
	case <-quit:
	case <-time.After(5 * time.Second):
		t.Fatal("quit not seen while the guest was stuck")
	}
}

func TestCloseStopsInput(t *testing.T) {
	g := &guest{limit: 10}
	c, _, _ := startPipe(t, g, nil)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c.Start(g.deliver, nil) // after Close: ignored
}

func TestQuitMayClose(t *testing.T) {
	ready := make(chan *Console, 1)
	g := &guest{limit: 10}
	c, w, _ := startPipe(t, g, func() { (<-ready).Close() })
	ready <- c
	w.Write([]byte("\x01x"))
	waitDone(t, c)
	if !c.closed {
		t.Fatal("Close from quit did not take effect")
	}
}

func TestDevNullInput(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := Open("stdio", WithInput(f), WithOutput(&syncBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Start(func(p []byte) int { return len(p) }, func() {})
	waitDone(t, c)
}

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlocking pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("pty number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("opening pty: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

func TestTerminalRawMode(t *testing.T) {
	m, s := openPTY(t)
	fd := int(s.Fd())
	before, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	g := &guest{limit: 100}
	quit := make(chan struct{})
	c, err := Open("stdio", WithInput(s), WithOutput(&syncBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	c.Start(g.deliver, func() { close(quit) })
	raw, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 || raw.Iflag&unix.ICRNL != 0 {
		t.Fatalf("terminal not raw: lflag %#x iflag %#x", raw.Lflag, raw.Iflag)
	}
	if raw.Oflag&unix.OPOST == 0 {
		t.Fatal("output processing turned off")
	}
	// Ctrl-C and CR reach the guest untranslated; then quit.
	m.Write([]byte("a\x03\r\x01x"))
	select {
	case <-quit:
	case <-time.After(5 * time.Second):
		t.Fatal("quit not seen through the terminal")
	}
	if got := g.bytes(); string(got) != "a\x03\r" {
		t.Fatalf("guest got %q", got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Fatalf("terminal settings not restored:\n got %+v\nwant %+v", after, before)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
