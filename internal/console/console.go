// Package console connects the guest's serial console to the host: where
// guest output goes (the VMM's stdout, a file, or nowhere) and, for
// stdio, host keyboard input back to the guest, with QEMU-style escape
// commands (Ctrl-A x quits, Ctrl-A h prints help).
package console

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrSpec reports a console spec that is not stdio, virtio, file:PATH or
// none.
var ErrSpec = errors.New("console: invalid spec")

type kind uint8

const (
	kindNone kind = iota
	kindStdio
	kindFile
)

// Option adjusts a Console at Open.
type Option func(*options)

type options struct {
	escape byte
	in     *os.File
	out    io.Writer
}

// WithEscapeChar sets the escape character introducing console commands
// (DefaultEscapeChar, Ctrl-A, unless set); 0 disables escapes so every
// byte goes to the guest.
func WithEscapeChar(c byte) Option { return func(o *options) { o.escape = c } }

// WithInput makes a stdio console read f instead of os.Stdin.
func WithInput(f *os.File) Option { return func(o *options) { o.in = f } }

// WithOutput makes a stdio console write to w instead of os.Stdout.
func WithOutput(w io.Writer) Option { return func(o *options) { o.out = w } }

// Console is the host side of the guest console.
type Console struct {
	kind   kind
	virtio bool // "virtio": stdio on the guest's virtio console (hvc0)
	out    *lockedWriter
	file   *os.File // output file to close, for file:PATH
	in     *os.File
	escape byte

	mu      sync.Mutex
	started bool
	running bool // the input goroutine was started
	closed  bool
	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when the input goroutine exits
	wakeFD  int           // eventfd that interrupts the input goroutine's poll; -1 when closed
	ttyFD   int
	saved   *unix.Termios // terminal settings to restore, nil if untouched
}

// ParseSpec checks a console spec without opening anything.
func ParseSpec(spec string) error {
	_, _, err := parseSpec(spec)
	return err
}

func parseSpec(spec string) (kind, string, error) {
	switch {
	case spec == "stdio", spec == "virtio":
		return kindStdio, "", nil
	case spec == "none":
		return kindNone, "", nil
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		if path == "" {
			return 0, "", fmt.Errorf("%w: %q has no path (want file:PATH)", ErrSpec, spec)
		}
		return kindFile, path, nil
	}
	return 0, "", fmt.Errorf("%w: %q (want stdio, virtio, file:PATH or none)", ErrSpec, spec)
}

// Open prepares the console described by spec: "stdio" (guest output to
// stdout, stdin to the guest), "virtio" (stdio too, meant for the guest's
// virtio console rather than its UART: see Virtio), "file:PATH" (output
// to PATH, created or truncated; no input) or "none" (output discarded; no
// input). It does not touch the terminal: Start does.
func Open(spec string, opts ...Option) (*Console, error) {
	k, path, err := parseSpec(spec)
	if err != nil {
		return nil, err
	}
	o := options{escape: DefaultEscapeChar, in: os.Stdin, out: os.Stdout}
	for _, opt := range opts {
		opt(&o)
	}
	c := &Console{
		kind:   k,
		virtio: spec == "virtio",
		escape: o.escape,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		wakeFD: -1,
		ttyFD:  -1,
	}
	switch k {
	case kindStdio:
		c.out = &lockedWriter{w: o.out}
		c.in = o.in
	case kindFile:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		c.file = f
		c.out = &lockedWriter{w: f}
	default:
		c.out = &lockedWriter{w: io.Discard}
	}
	return c, nil
}

// Virtio reports whether the spec was "virtio": the VMM should attach
// this console to a virtio console (hvc0) instead of the UART.
func (c *Console) Virtio() bool { return c.virtio }

// Output is where guest console bytes go. It is safe for concurrent use.
func (c *Console) Output() io.Writer { return c.out }

// Start begins delivering host input to the guest, for a stdio console
// (other kinds have no input and ignore it). deliver offers bytes to the
// guest and returns how many it took, like the UART's Enqueue; the rest
// is offered again shortly, so input is never dropped. quit is called,
// once, when the user types the escape character then x; input stops
// there. quit runs on the input goroutine and may call Close. A nil
// deliver disables input; a nil quit makes the quit escape only stop input.
//
// When stdin is a terminal in the foreground it is put in raw mode until
// Close. A terminal in the background is left alone and not read (reading
// it would stop the process). End of input stops reading and nothing else.
// Start does nothing after the first call or after Close.
func (c *Console) Start(deliver func([]byte) int, quit func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kind != kindStdio || c.started || c.closed || c.in == nil || deliver == nil {
		return
	}
	if quit == nil {
		quit = func() {}
	}
	c.started = true
	fd := int(c.in.Fd())
	if isTerminal(fd) {
		if !inForeground(fd) {
			slog.Warn("console: terminal is in the background; guest input disabled")
			return
		}
		saved, err := makeRaw(fd)
		if err != nil {
			slog.Warn("console: cannot switch the terminal to raw mode", "err", err)
		} else {
			c.ttyFD, c.saved = fd, saved
		}
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		slog.Warn("console: guest input disabled", "err", err)
		c.restoreLocked()
		return
	}
	c.wakeFD = wake
	c.running = true
	r := &reader{c: c, fd: fd, wake: wake, deliver: deliver, quit: quit, esc: escaper{char: c.escape}}
	go r.run()
}

// Close restores the terminal, stops reading input and closes an output
// file. Stop the UART (or flush it) first so its last bytes are written.
// Close is idempotent and safe to call from any goroutine, including from
// the quit callback; it does not wait for a read in progress.
func (c *Console) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.stop)
	if c.wakeFD >= 0 {
		var one = [8]byte{1}
		_, _ = unix.Write(c.wakeFD, one[:])
	}
	err := c.restoreLocked()
	if c.file != nil {
		if cerr := c.file.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("console: %w", cerr))
		}
	}
	if !c.running {
		close(c.done)
	}
	return err
}

// restoreLocked puts the terminal settings back, if they were changed.
func (c *Console) restoreLocked() error {
	if c.saved == nil {
		return nil
	}
	err := restoreTerminal(c.ttyFD, c.saved)
	c.saved = nil
	if err != nil {
		return fmt.Errorf("console: restoring terminal: %w", err)
	}
	return nil
}

// lockedWriter serialises writes from the UART and the console's own
// messages.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
