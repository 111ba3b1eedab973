package vsock

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Errors of the host socket backend.
var (
	ErrSocketInUse = errors.New("vsock: host socket path is in use by a running listener")
	ErrNotSocket   = errors.New("vsock: host socket path exists and is not a socket")
	ErrClosed      = errors.New("vsock: device is closed")
)

// listenBacklog is how many host connections may wait for accept.
const listenBacklog = 128

// listener is the Unix socket that host programs connect to. It is a raw
// non-blocking descriptor because the device's event loop polls it with
// its own epoll instance, outside Go's network poller.
type listener struct {
	fd   int
	path string
	dev  uint64 // identity of the socket file, to unlink only our own
	ino  uint64
}

// listen binds a stream socket at path. A stale socket file there (one
// nobody accepts on, left by a process that died) is replaced; a live one
// or any other kind of file is an error.
func listen(path string) (*listener, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock: socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock: binding %s: %w", path, err)
	}
	l := &listener{fd: fd, path: path}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err == nil {
		l.dev, l.ino = st.Dev, st.Ino
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		l.close()
		return nil, fmt.Errorf("vsock: listening on %s: %w", path, err)
	}
	return l, nil
}

// removeStale removes a socket file at path that refuses connections.
func removeStale(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vsock: %w", err)
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%w: %s", ErrNotSocket, path)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("vsock: socket: %w", err)
	}
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	unix.Close(fd)
	if err == nil || err == unix.EAGAIN {
		return fmt.Errorf("%w: %s", ErrSocketInUse, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("vsock: removing the stale socket %s: %w", path, err)
	}
	return nil
}

// accept takes one pending connection as a non-blocking descriptor. It
// returns -1 and nil when none is pending.
func (l *listener) accept() (int, error) {
	for {
		fd, _, err := unix.Accept4(l.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
			return fd, nil
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case unix.EAGAIN:
			return -1, nil
		}
		return -1, fmt.Errorf("vsock: accepting on %s: %w", l.path, err)
	}
}

// close closes the socket and removes its file if it is still ours.
func (l *listener) close() {
	unix.Close(l.fd)
	var st unix.Stat_t
	if unix.Stat(l.path, &st) == nil && st.Dev == l.dev && st.Ino == l.ino {
		os.Remove(l.path)
	}
}

// portPath is the host socket for guest connections to port: PATH_port.
func portPath(base string, port uint32) string {
	return base + "_" + strconv.FormatUint(uint64(port), 10)
}

// dial connects to the host socket of a guest-initiated connection
// without blocking: a listener whose backlog is full refuses (EAGAIN), as
// does a missing or dead one.
func dial(path string) (int, error) {
	if len(path) > maxPathLen {
		return -1, fmt.Errorf("vsock: socket path %s is too long", path)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("vsock: socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("vsock: connecting to %s: %w", path, err)
	}
	return fd, nil
}
