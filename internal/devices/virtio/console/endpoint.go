package console

import (
	"errors"
	"io"
	"log/slog"
	"sync"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// endpoint is the host side of a port as the device's worker sees it.
// Guest output is staged in the endpoint (taken from a transmit chain,
// then flushed to the host) and host input is staged there too (read from
// the host, then delivered into receive chains), so nothing in flight is
// tied to one activation of the device.
type endpoint interface {
	// connected reports whether a host peer is there; the guest learns it
	// through PORT_OPEN.
	connected() bool
	// inputReady reports whether host input is staged, first reading the
	// host without blocking when none is.
	inputReady() bool
	// deliver moves staged host input into c's writable buffers and
	// returns the number of bytes moved.
	deliver(c *virtio.DescriptorChain) (int, error)
	// flush writes staged guest output to the host and reports whether
	// none is left (false: the host cannot take it now).
	flush() bool
	// stage copies guest output from c into the empty staging buffer.
	stage(c *virtio.DescriptorChain) error
	// stagedOut is the number of guest output bytes staged, not yet
	// handed to the host.
	stagedOut() int
}

// consoleEnd is the host side of a console port: output to a writer,
// input from Enqueue.
type consoleEnd struct {
	out    io.Writer
	log    *slog.Logger
	failed bool   // an output error was logged
	staged buffer // guest output read from a chain (worker-owned)

	mu sync.Mutex // guards in
	in buffer     // host input not yet delivered
}

// consoleInputSize bounds host console input waiting for the guest.
const consoleInputSize = 4096

// consoleStageSize is how much guest output is copied per write.
const consoleStageSize = 4096

func newConsoleEnd(out io.Writer) *consoleEnd {
	if out == nil {
		out = io.Discard
	}
	return &consoleEnd{out: out, log: slog.Default(), staged: newBuffer(consoleStageSize), in: newBuffer(consoleInputSize)}
}

// enqueue queues host input and returns how many bytes fit.
func (e *consoleEnd) enqueue(p []byte) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := copy(e.in.room(), p)
	e.in.commit(n)
	return n
}

func (e *consoleEnd) connected() bool { return true }

func (e *consoleEnd) inputReady() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.in.len() > 0
}

func (e *consoleEnd) deliver(c *virtio.DescriptorChain) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, err := c.Write(e.in.data())
	e.in.consume(n)
	if errors.Is(err, io.ErrShortWrite) {
		err = nil
	}
	return n, err
}

// flush writes the staged output; a failing writer loses it (logged once)
// rather than stalling the guest.
func (e *consoleEnd) flush() bool {
	if e.staged.len() == 0 {
		return true
	}
	if _, err := e.out.Write(e.staged.data()); err != nil && !e.failed {
		e.failed = true
		e.log.Warn("virtio-console: console output failed; dropping guest output", "err", err)
	}
	e.staged.clear()
	return true
}

func (e *consoleEnd) stage(c *virtio.DescriptorChain) error {
	n, err := c.Read(e.staged.room())
	e.staged.commit(n)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}

func (e *consoleEnd) stagedOut() int { return e.staged.len() }
