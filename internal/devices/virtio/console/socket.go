package console

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// Errors of the host socket.
var (
	ErrSocketPath  = errors.New("virtio-console: invalid socket path")
	ErrSocketInUse = errors.New("virtio-console: socket path is in use")
)

// socketStageSize bounds bytes staged in each direction.
const socketStageSize = 16 << 10

// Socket is the host end of a channel: a Unix stream socket Vireo listens
// on, with at most one client at a time. A client that connects while
// another is attached is accepted and closed at once (it reads end of
// file); once the current client has gone, the next one is accepted.
//
// A Socket outlives the devices that use it, so a client stays connected
// across guest resets and the bytes staged in it are kept: guest output
// taken from the queue but not yet written waits for the next client.
// Only one active device may use a Socket at a time. Close it once no
// device uses it any more.
type Socket struct {
	path string
	log  *slog.Logger
	dev  uint64 // device and inode of the socket file, to unlink only ours
	ino  uint64

	mu     sync.Mutex // guards everything below
	lfd    int        // listening socket; -1 once closed
	cfd    int        // client connection; -1 when none
	hup    bool       // the client hung up; its remaining input is still delivered
	paused bool       // accept failed for lack of resources: stop polling the listener
	in     buffer     // client bytes read, not yet given to the guest
	out    buffer     // guest bytes not yet written to a client
	closed bool
}

// Listen creates a Unix socket at path and listens on it. A stale socket
// file left by an earlier run is replaced; a path that is not a socket, or
// a socket another process is listening on, is refused.
func Listen(path string, log *slog.Logger) (*Socket, error) {
	if log == nil {
		log = slog.Default()
	}
	if path == "" {
		return nil, fmt.Errorf("%w: empty path", ErrSocketPath)
	}
	var sa unix.RawSockaddrUnix
	if len(path) >= len(sa.Path) {
		return nil, fmt.Errorf("%w: %s is %d bytes long, at most %d", ErrSocketPath, path, len(path), len(sa.Path)-1)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("virtio-console: socket %s: %w", path, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("virtio-console: socket %s: bind: %w", path, err)
	}
	if err := unix.Listen(fd, 4); err != nil {
		unix.Close(fd)
		os.Remove(path)
		return nil, fmt.Errorf("virtio-console: socket %s: listen: %w", path, err)
	}
	s := &Socket{path: path, log: log, lfd: fd, cfd: -1, in: newBuffer(socketStageSize), out: newBuffer(socketStageSize)}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err == nil {
		s.dev, s.ino = st.Dev, st.Ino
	}
	return s, nil
}

// removeStale removes a socket file nobody listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("virtio-console: socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%w: %s exists and is not a socket", ErrSocketPath, path)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("virtio-console: socket %s: %w", path, err)
	}
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	unix.Close(fd)
	if err == nil {
		return fmt.Errorf("%w: another process listens on %s", ErrSocketInUse, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("virtio-console: removing stale socket: %w", err)
	}
	return nil
}

// Path is the socket's file name.
func (s *Socket) Path() string { return s.path }

// Connected reports whether a client is attached.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfd >= 0
}

// Close disconnects the client, stops listening and removes the socket
// file (if it is still the one Listen created). It is idempotent.
func (s *Socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.dropClient()
	err := unix.Close(s.lfd)
	s.lfd = -1
	var st unix.Stat_t
	if unix.Stat(s.path, &st) == nil && st.Dev == s.dev && st.Ino == s.ino {
		if rerr := os.Remove(s.path); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		return fmt.Errorf("virtio-console: closing %s: %w", s.path, err)
	}
	return nil
}

// dropClient closes the client connection; s.mu is held. Input read from
// it but not delivered is discarded; guest output waiting for a client is
// kept.
func (s *Socket) dropClient() {
	if s.cfd >= 0 {
		unix.Close(s.cfd)
	}
	s.cfd, s.hup, s.paused = -1, false, false
	s.in.clear()
}

// pollFDs returns what the worker should wait for: the listener, and the
// client with the events that would let it make progress (-1: do not
// poll). guestOpen tells whether host input may be delivered now. A client
// that hung up is polled only while its remaining input can be read, so its
// standing POLLHUP cannot keep the worker spinning.
func (s *Socket) pollFDs(guestOpen bool) (lfd, cfd int, events int16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lfd, cfd = s.lfd, -1
	if s.paused || s.closed {
		lfd = -1
	}
	if s.cfd < 0 || s.closed {
		return lfd, -1, 0
	}
	wantIn := guestOpen && s.in.len() == 0
	if s.hup {
		if wantIn {
			return lfd, s.cfd, unix.POLLIN
		}
		return lfd, -1, 0
	}
	if wantIn {
		events |= unix.POLLIN
	}
	if s.out.len() > 0 {
		events |= unix.POLLOUT
	}
	return lfd, s.cfd, events
}

// polled handles what poll reported for the listener and the client.
func (s *Socket) polled(lrev, crev int16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if crev&(unix.POLLHUP|unix.POLLERR) != 0 && s.cfd >= 0 {
		s.hup = true
	}
	if lrev != 0 {
		s.accept()
	}
}

// accept takes pending connections; s.mu is held.
func (s *Socket) accept() {
	for {
		nfd, _, err := unix.Accept4(s.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch {
		case err == nil:
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
			continue
		case errors.Is(err, unix.EAGAIN):
			return
		default:
			s.log.Warn("virtio-console: accepting a client failed; waiting for the current one to leave", "socket", s.path, "err", err)
			s.paused = true
			return
		}
		if s.cfd >= 0 && !s.hup {
			unix.Close(nfd)
			s.log.Info("virtio-console: refused a second client", "socket", s.path)
			continue
		}
		if s.cfd >= 0 && s.in.len() > 0 {
			s.log.Info("virtio-console: new client replaces one that hung up; its undelivered input is dropped", "socket", s.path, "bytes", s.in.len())
		}
		s.dropClient()
		s.cfd = nfd
		s.log.Info("virtio-console: client connected", "socket", s.path)
	}
}

func (s *Socket) connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfd >= 0
}

func (s *Socket) inputReady() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.in.len() > 0 {
		return true
	}
	for s.cfd >= 0 {
		n, err := unix.Read(s.cfd, s.in.room())
		switch {
		case err == nil && n > 0:
			s.in.commit(n)
			return true
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return false
		}
		// End of file, or the connection broke.
		s.log.Info("virtio-console: client disconnected", "socket", s.path)
		s.dropClient()
	}
	return false
}

func (s *Socket) deliver(c *virtio.DescriptorChain) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := c.Write(s.in.data())
	s.in.consume(n)
	if errors.Is(err, io.ErrShortWrite) {
		err = nil
	}
	return n, err
}

func (s *Socket) flush() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.out.len() > 0 {
		if s.cfd < 0 || s.hup {
			return false
		}
		n, err := unix.Write(s.cfd, s.out.data())
		switch {
		case err == nil:
			s.out.consume(n)
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			return false
		default:
			// EPIPE or ECONNRESET: the client cannot take more. Its
			// remaining input is still read; the output waits for the
			// next client.
			s.hup = true
			return false
		}
	}
	return true
}

func (s *Socket) stage(c *virtio.DescriptorChain) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := c.Read(s.out.room())
	s.out.commit(n)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}

func (s *Socket) stagedOut() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.len()
}
