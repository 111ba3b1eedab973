// Package initramfs writes the initial RAM filesystems Vireo hands to guest
// kernels: uncompressed "newc" cpio archives (the format the kernel unpacks
// into its rootfs) and the default test guest's busybox image.
//
// Archives are left uncompressed on purpose: on hosts where guest kernel code
// is emulated, decompressing an initramfs costs tens of seconds of boot time.
package initramfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"strings"
)

// Errors returned by Archive methods.
var (
	ErrBadPath  = errors.New("initramfs: invalid path")
	ErrExists   = errors.New("initramfs: path already in archive")
	ErrNotDir   = errors.New("initramfs: parent is not a directory")
	ErrTooLarge = errors.New("initramfs: file too large for newc cpio")
	ErrClosed   = errors.New("initramfs: archive closed")
)

// newc format constants.
const (
	magic      = "070701"
	headerSize = 110 // magic plus 13 eight-digit hex fields
	trailer    = "TRAILER!!!"
	pathMax    = 4096 // PATH_MAX: the kernel skips a name (with its NUL) or link target longer than this

	modeDir  = 0o040000
	modeReg  = 0o100000
	modeLink = 0o120000
	modeChr  = 0o020000
)

// Archive writes a newc cpio archive entry by entry. Paths are slash
// separated and relative to the guest's root; a leading "/" is ignored.
// Missing parent directories are added implicitly with mode 0755, so add a
// directory before its contents when it needs another mode. All entries are
// owned by root and carry a zero modification time, so equal input gives
// byte-identical archives.
//
// An Archive is not safe for concurrent use. After the first write error
// every method returns that error.
type Archive struct {
	w     *bufio.Writer
	ino   uint32
	kinds map[string]uint32 // path -> type bits of the entry written for it
	modes map[string]uint32 // directory path -> full mode, for idempotent Dir
	err   error
	hdr   [headerSize]byte
}

// New returns an Archive writing to w. Close must be called to write the
// trailer and flush buffered data; it does not close w.
func New(w io.Writer) *Archive {
	return &Archive{
		w:     bufio.NewWriterSize(w, 64<<10),
		kinds: map[string]uint32{},
		modes: map[string]uint32{},
	}
}

// Dir adds a directory. Adding a directory that is already present with the
// same mode is a no-op.
func (a *Archive) Dir(p string, mode fs.FileMode) error {
	name, err := a.prepare(p)
	if errors.Is(err, ErrExists) && a.modes[name] == modeDir|unixPerm(mode) {
		return nil
	}
	if err != nil {
		return err
	}
	return a.entry(name, modeDir|unixPerm(mode), nil, 0, 0)
}

// File adds a regular file holding data.
func (a *Archive) File(p string, mode fs.FileMode, data []byte) error {
	name, err := a.prepare(p)
	if err != nil {
		return err
	}
	if uint64(len(data)) > math.MaxUint32 {
		return fmt.Errorf("%w: %s is %d bytes", ErrTooLarge, name, len(data))
	}
	return a.entry(name, modeReg|unixPerm(mode), data, 0, 0)
}

// Symlink adds a symbolic link at p pointing to target.
func (a *Archive) Symlink(p, target string) error {
	name, err := a.prepare(p)
	if err != nil {
		return err
	}
	if target == "" || len(target) > pathMax || strings.IndexByte(target, 0) >= 0 {
		return fmt.Errorf("%w: symlink %s has target %q", ErrBadPath, name, target)
	}
	return a.entry(name, modeLink|0o777, []byte(target), 0, 0)
}

// CharDev adds a character device node with the given device numbers.
func (a *Archive) CharDev(p string, mode fs.FileMode, major, minor uint32) error {
	name, err := a.prepare(p)
	if err != nil {
		return err
	}
	return a.entry(name, modeChr|unixPerm(mode), nil, major, minor)
}

// Close writes the trailer record and flushes the archive. It does not
// close the underlying writer. Calling Close again returns ErrClosed.
func (a *Archive) Close() error {
	if a.err != nil {
		return a.err
	}
	a.header(0, 0, 1, 0, 0, 0, len(trailer)+1)
	a.write(a.hdr[:], []byte(trailer), []byte{0}, pad(headerSize+len(trailer)+1))
	if a.err == nil {
		if err := a.w.Flush(); err != nil {
			a.err = fmt.Errorf("initramfs: write: %w", err)
		}
	}
	if a.err != nil {
		return a.err
	}
	a.err = ErrClosed
	return nil
}

// prepare validates p, returns its archive name and adds missing parents.
// For an existing path it returns the name together with ErrExists.
func (a *Archive) prepare(p string) (string, error) {
	if a.err != nil {
		return "", a.err
	}
	name, err := clean(p)
	if err != nil {
		return "", err
	}
	if _, ok := a.kinds[name]; ok {
		return name, fmt.Errorf("%w: %s", ErrExists, name)
	}
	if err := a.parents(name); err != nil {
		return "", err
	}
	return name, nil
}

// parents adds the missing ancestors of name, outermost first.
func (a *Archive) parents(name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	kind, ok := a.kinds[dir]
	if ok {
		if kind != modeDir {
			return fmt.Errorf("%w: %s", ErrNotDir, dir)
		}
		return nil
	}
	if err := a.parents(dir); err != nil {
		return err
	}
	return a.entry(dir, modeDir|0o755, nil, 0, 0)
}

// entry writes one record: header, NUL-terminated name, padding, data,
// padding.
func (a *Archive) entry(name string, mode uint32, data []byte, major, minor uint32) error {
	a.ino++
	nlink := uint32(1)
	if mode&0o170000 == modeDir {
		nlink = 2
		a.modes[name] = mode
	}
	a.kinds[name] = mode & 0o170000
	a.header(a.ino, mode, nlink, uint32(len(data)), major, minor, len(name)+1)
	a.write(a.hdr[:], []byte(name), []byte{0}, pad(headerSize+len(name)+1), data, pad(len(data)))
	return a.err
}

// header fills a.hdr. Owner, modification time, the device the file lives
// on and the checksum are always zero.
func (a *Archive) header(ino, mode, nlink, size, rmajor, rminor uint32, namesize int) {
	fields := [13]uint32{ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, uint32(namesize), 0}
	copy(a.hdr[:], magic)
	const digits = "0123456789ABCDEF"
	for i, v := range fields {
		b := a.hdr[len(magic)+8*i : len(magic)+8*i+8]
		for j := 7; j >= 0; j-- {
			b[j] = digits[v&0xf]
			v >>= 4
		}
	}
}

// write writes the chunks in order, recording the first error.
func (a *Archive) write(chunks ...[]byte) {
	for _, c := range chunks {
		if a.err != nil {
			return
		}
		if _, err := a.w.Write(c); err != nil {
			a.err = fmt.Errorf("initramfs: write: %w", err)
		}
	}
}

var zeros [3]byte

// pad returns the zero bytes that align n to a multiple of four.
func pad(n int) []byte {
	return zeros[:(4-n%4)%4]
}

// clean turns p into an archive name: leading and trailing slashes removed,
// no empty, "." or ".." elements, shorter than PATH_MAX, and not the root.
func clean(p string) (string, error) {
	name := strings.Trim(p, "/")
	if name == "" || len(name) >= pathMax || strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: %q", ErrBadPath, p)
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return "", fmt.Errorf("%w: %q", ErrBadPath, p)
		}
	}
	return name, nil
}

// unixPerm converts the permission and special bits of mode to the Unix
// st_mode layout. Type bits in mode are ignored.
func unixPerm(mode fs.FileMode) uint32 {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}
