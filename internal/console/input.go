package console

import (
	"errors"
	"io"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// maxPending bounds input read from the host but not yet taken by
	// the guest; while it is full the host side is not read.
	maxPending = 64 << 10
	// retryDelay is how soon bytes the guest did not take are offered again.
	retryDelay = 10 * time.Millisecond
	readChunk  = 4096
)

// reader moves host input to the guest. Escape commands are recognised
// as bytes are read, not when the guest takes them, so the user can quit
// even when the guest has stopped reading its console.
type reader struct {
	c       *Console
	fd      int
	wake    int
	deliver func([]byte) int
	quit    func()
	esc     escaper
	pending []byte // guest bytes not yet delivered
	eof     bool
}

func (r *reader) run() {
	defer r.exit()
	r.pending = make([]byte, 0, maxPending)
	buf := make([]byte, readChunk)
	for {
		r.offer()
		// Each input byte yields at most two guest bytes.
		room := (cap(r.pending) - len(r.pending)) / 2
		wantInput := !r.eof && room > 0
		if !wantInput && len(r.pending) == 0 {
			return // input ended and everything was delivered
		}
		timeout := -1
		if len(r.pending) > 0 {
			timeout = int(retryDelay / time.Millisecond)
		}
		readable, stop := r.wait(wantInput, timeout)
		if stop {
			return
		}
		if !readable {
			continue
		}
		n, err := unix.Read(r.fd, buf[:min(len(buf), room)])
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		if n <= 0 {
			// End of input (or an error such as a hung-up terminal):
			// stop reading quietly; the VM keeps running.
			r.eof = true
			r.pending = r.esc.flush(r.pending)
			continue
		}
		if r.consume(buf[:n]) {
			return
		}
	}
}

// consume runs input through the escape recogniser and reports whether
// the user asked to quit.
func (r *reader) consume(in []byte) bool {
	for _, b := range in {
		var act action
		r.pending, act = r.esc.feed(r.pending, b)
		switch act {
		case actQuit:
			r.offer() // one try for what was typed before: never wait
			r.quit()
			return true
		case actHelp:
			_, _ = io.WriteString(r.c.out, helpText(r.esc.char))
		}
	}
	return false
}

// offer gives pending bytes to the guest for as long as it takes some,
// and keeps what it did not take.
func (r *reader) offer() {
	off := 0
	for off < len(r.pending) {
		n := min(r.deliver(r.pending[off:]), len(r.pending)-off)
		if n <= 0 {
			break
		}
		off += n
	}
	r.pending = r.pending[:copy(r.pending, r.pending[off:])]
}

// wait blocks until input is readable (when wanted), the console is
// closed, or timeout milliseconds pass (-1: no limit).
func (r *reader) wait(wantInput bool, timeout int) (readable, stop bool) {
	fds := [2]unix.PollFd{{Fd: int32(r.wake), Events: unix.POLLIN}, {Fd: int32(r.fd), Events: unix.POLLIN}}
	n := 1
	if wantInput {
		n = 2
	}
	if _, err := unix.Poll(fds[:n], timeout); err != nil && !errors.Is(err, unix.EINTR) {
		// Polling this input is impossible: treat it as ended.
		r.eof = true
		return false, false
	}
	select {
	case <-r.c.stop:
		return false, true
	default:
	}
	// Any event on the input (data, hang-up, error) is settled by read.
	return wantInput && fds[1].Revents != 0, false
}

// exit releases the wake-up descriptor and marks the goroutine done.
func (r *reader) exit() {
	c := r.c
	c.mu.Lock()
	if c.wakeFD >= 0 {
		unix.Close(c.wakeFD)
		c.wakeFD = -1
	}
	c.mu.Unlock()
	close(c.done)
}
