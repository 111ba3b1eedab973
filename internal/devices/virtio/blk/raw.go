package blk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// zeros is the source of explicit zero writes.
var zeros = make([]byte, 64<<10)

// fdatasync is unix.Fdatasync; tests replace it to inject failures.
var fdatasync = unix.Fdatasync

// rawFile is a raw image: guest sector n is file byte n*512.
type rawFile struct {
	f    *os.File
	fd   int
	size int64
	// With cache=none f is opened O_DIRECT and buf is a second, buffered
	// descriptor for requests whose buffers direct I/O refuses (EINVAL:
	// misaligned) and for explicit zero writes. Otherwise buf is f.
	direct   bool
	buf      *os.File
	bufFD    int
	dioAlign uint32 // offset and length alignment direct I/O needs
	warn     func(msg string, args ...any)
	fallback sync.Once // the first buffered fallback is logged

	noPunch     atomic.Bool // PUNCH_HOLE is not supported
	noZeroRange atomic.Bool // ZERO_RANGE is not supported

	// flushErr, once set, is returned by every later flush: after a failed
	// fdatasync the kernel may have dropped dirty pages, so no later flush
	// can promise that earlier writes are durable.
	flushMu  sync.Mutex
	flushErr error
}

// openRaw opens path for raw access. With CacheNone it tries O_DIRECT and
// falls back to the page cache (with a warning) where the file system
// refuses it.
func openRaw(path string, readOnly bool, cache CacheMode, warn func(string, ...any)) (*rawFile, error) {
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	flag |= unix.O_CLOEXEC | unix.O_NONBLOCK
	r := &rawFile{warn: warn}
	var err error
	if cache == CacheNone {
		r.f, err = os.OpenFile(path, flag|unix.O_DIRECT, 0)
		if errors.Is(err, unix.EINVAL) {
			warn("disk: the file system does not support O_DIRECT; cache=none falls back to the host page cache", "path", path)
		} else if err == nil {
			r.direct = true
		}
	}
	if r.f == nil {
		r.f, err = os.OpenFile(path, flag, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOpen, err)
	}
	ok := false
	defer func() {
		if !ok {
			r.close()
		}
	}()
	st, err := r.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOpen, err)
	}
	if err := checkFileType(path, st.Mode()); err != nil {
		return nil, err
	}
	if r.size, err = r.f.Seek(0, io.SeekEnd); err != nil {
		return nil, fmt.Errorf("%w: %s: size: %w", ErrOpen, path, err)
	}
	r.fd = int(r.f.Fd())
	r.buf, r.bufFD = r.f, r.fd
	if r.direct {
		r.dioAlign = directAlign(r.fd)
		if r.dioAlign > 4096 {
			warn("disk: direct I/O needs an alignment above 4096 bytes; cache=none falls back to the host page cache", "path", path, "alignment", r.dioAlign)
			r.direct, r.dioAlign = false, 0
			r.f.Close()
			if r.f, err = os.OpenFile(path, flag, 0); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrOpen, err)
			}
			r.fd = int(r.f.Fd())
			r.buf, r.bufFD = r.f, r.fd
		} else {
			if r.buf, err = os.OpenFile(path, flag, 0); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrOpen, err)
			}
			r.bufFD = int(r.buf.Fd())
		}
	}
	ok = true
	return r, nil
}

// directAlign is the file offset alignment that O_DIRECT needs on fd
// (statx STATX_DIOALIGN), at least one sector.
func directAlign(fd int) uint32 {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &stx); err != nil || stx.Mask&unix.STATX_DIOALIGN == 0 {
		return SectorSize
	}
	return max(stx.Dio_offset_align, SectorSize)
}

func (r *rawFile) readv(s *iovScratch, bufs [][]byte, off int64) error {
	err := s.transfer(r.fd, bufs, off, false)
	if err == unix.EINVAL && r.direct {
		r.noteFallback()
		err = s.transfer(r.bufFD, bufs, off, false)
	}
	return err
}

func (r *rawFile) writev(s *iovScratch, bufs [][]byte, off int64) error {
	err := s.transfer(r.fd, bufs, off, true)
	if err == unix.EINVAL && r.direct {
		r.noteFallback()
		err = s.transfer(r.bufFD, bufs, off, true)
	}
	return err
}

func (r *rawFile) noteFallback() {
	r.fallback.Do(func() {
		r.warn("disk: the guest's buffers do not suit direct I/O; such requests go through the host page cache", "path", r.f.Name())
	})
}

func (r *rawFile) flush() error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	if r.flushErr != nil {
		return r.flushErr
	}
	for {
		err := fdatasync(r.fd)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			r.flushErr = fmt.Errorf("fdatasync: %w (every later flush fails too)", err)
			return r.flushErr
		}
		return nil
	}
}

func (r *rawFile) discard(off, n int64) error {
	if n == 0 || r.noPunch.Load() {
		return nil // discard is a hint
	}
	err := fallocate(r.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if unsupported(err) {
		r.noPunch.Store(true)
		return nil
	}
	return err
}

func (r *rawFile) writeZeroes(off, n int64, unmap bool) error {
	if n == 0 {
		return nil
	}
	if unmap && !r.noPunch.Load() {
		err := fallocate(r.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
		if !unsupported(err) {
			return err
		}
		r.noPunch.Store(true)
	}
	if !r.noZeroRange.Load() {
		err := fallocate(r.fd, unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, off, n)
		if !unsupported(err) {
			return err
		}
		r.noZeroRange.Store(true)
	}
	for n > 0 {
		k, err := unix.Pwrite(r.bufFD, zeros[:min(n, int64(len(zeros)))], off)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case k == 0:
			return io.ErrShortWrite
		}
		off += int64(k)
		n -= int64(k)
	}
	return nil
}

func (r *rawFile) close() error {
	var err error
	if r.buf != nil && r.buf != r.f {
		err = r.buf.Close()
	}
	if r.f != nil {
		if cerr := r.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func fallocate(fd int, mode uint32, off, n int64) error {
	for {
		err := unix.Fallocate(fd, mode, off, n)
		if err != unix.EINTR {
			return err
		}
	}
}

// unsupported reports whether err says the file system lacks a fallocate
// mode.
func unsupported(err error) bool {
	return err == unix.EOPNOTSUPP || err == unix.ENOSYS || err == unix.EINVAL
}
