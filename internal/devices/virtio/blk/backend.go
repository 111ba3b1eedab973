package blk

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Errors of opening and using a disk image.
var (
	ErrOpen          = errors.New("disk: cannot open the image")
	ErrFileType      = errors.New("disk: not a regular file or block device")
	ErrQcow2Writable = errors.New("qcow2 images are supported read-only: add ro=on")
	ErrQcow2         = errors.New("disk: unsupported or invalid qcow2 image")
	ErrFormat        = errors.New("disk: the image is not in the requested format")
	errReadOnly      = errors.New("disk: the image is read-only")
)

// backend is a disk image that the device reads and writes by byte
// offset. Offsets and lengths are validated against the capacity before
// a backend sees them. Methods may be called from several queue workers
// at once.
type backend interface {
	// readv fills bufs, in order, from the image at off.
	readv(s *iovScratch, bufs [][]byte, off int64) error
	// writev writes bufs, in order, to the image at off.
	writev(s *iovScratch, bufs [][]byte, off int64) error
	// flush makes every write completed so far durable; it returns an
	// error if that cannot be guaranteed.
	flush() error
	// discard tells the image that [off, off+n) is no longer needed.
	discard(off, n int64) error
	// writeZeroes zeroes [off, off+n); with unmap it may deallocate.
	writeZeroes(off, n int64, unmap bool) error
	// close releases the image.
	close() error
}

// iovScratch is a queue worker's reusable iovec array, so that vectored
// I/O does not allocate.
type iovScratch struct {
	iov []unix.Iovec
}

func newIOVScratch(n int) *iovScratch {
	return &iovScratch{iov: make([]unix.Iovec, 0, min(max(n, 1), maxIOV))}
}

// maxIOV is the kernel's IOV_MAX: the most iovecs one preadv takes.
const maxIOV = 1024

// transfer moves bufs between fd at off and memory with preadv (write
// false) or pwritev, resuming after short transfers and EINTR. A read
// that reaches the end of the file early fails with io.ErrUnexpectedEOF.
func (s *iovScratch) transfer(fd int, bufs [][]byte, off int64, write bool) error {
	bi, bo := 0, 0 // position: buffer index and offset inside it
	for {
		for bi < len(bufs) && bo == len(bufs[bi]) {
			bi, bo = bi+1, 0
		}
		if bi == len(bufs) {
			return nil
		}
		iov := s.iov[:0]
		for j := bi; j < len(bufs) && len(iov) < cap(iov); j++ {
			b := bufs[j]
			if j == bi {
				b = b[bo:]
			}
			if len(b) == 0 {
				continue
			}
			iov = append(iov, unix.Iovec{Base: &b[0]})
			iov[len(iov)-1].SetLen(len(b))
		}
		var n int
		var err error
		if write {
			n, err = pwritev(fd, iov, off)
		} else {
			n, err = preadv(fd, iov, off)
		}
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case n == 0 && write:
			return io.ErrShortWrite
		case n == 0:
			return io.ErrUnexpectedEOF
		}
		off += int64(n)
		for n > 0 {
			left := len(bufs[bi]) - bo
			if n < left {
				bo += n
				break
			}
			n -= left
			bi, bo = bi+1, 0
		}
	}
}

// openImage opens cfg's image: a qcow2 image (read-only) when the format
// says so or, with FormatAuto, when the file starts with the qcow2 magic;
// a raw image otherwise. It returns the backend, the virtual size in
// bytes, the format, and the alignment that direct I/O needs (0 without
// it).
func openImage(cfg *Config, warn func(msg string, args ...any)) (backend, int64, Format, uint32, error) {
	path := cfg.Path
	st, err := os.Stat(path)
	if err != nil {
		return nil, 0, "", 0, fmt.Errorf("%w: %w", ErrOpen, err)
	}
	if err := checkFileType(path, st.Mode()); err != nil {
		return nil, 0, "", 0, err
	}
	r, err := openRaw(path, cfg.ReadOnly, cfg.cache(), warn)
	if err != nil {
		return nil, 0, "", 0, err
	}
	isQcow2, err := hasQcow2Magic(r.buf)
	if err != nil {
		r.close()
		return nil, 0, "", 0, fmt.Errorf("%w: %s: %w", ErrOpen, path, err)
	}
	format := cfg.Format
	switch {
	case format == FormatQcow2 && !isQcow2:
		r.close()
		return nil, 0, "", 0, fmt.Errorf("%w: %s has no qcow2 header", ErrFormat, path)
	case format == FormatAuto && isQcow2:
		format = FormatQcow2
	case format == FormatAuto:
		format = FormatRaw
	}
	if format == FormatRaw {
		return r, r.size, format, r.dioAlign, nil
	}
	if !cfg.ReadOnly {
		r.close()
		return nil, 0, "", 0, fmt.Errorf("%s: %w", path, ErrQcow2Writable)
	}
	q, err := openQcow2(r, warn)
	if err != nil {
		r.close()
		return nil, 0, "", 0, fmt.Errorf("%s: %w", path, err)
	}
	return q, q.size, format, 0, nil
}

// checkFileType accepts regular files and block devices. Checking before
// the open keeps Vireo from opening FIFOs (which block) or character
// devices (whose open may have side effects).
func checkFileType(path string, m os.FileMode) error {
	if m.IsRegular() || (m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0) {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrFileType, path)
}
