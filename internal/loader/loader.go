// Package loader places a Linux kernel, its initrd and its command line in
// guest memory and writes the boot information structure the kernel reads
// at entry.
//
// Two image formats are understood: an uncompressed ELF vmlinux and a
// bzImage. An ELF carrying a Xen PVH entry note is booted through PVH
// (32-bit protected mode, EBX pointing at struct hvm_start_info); any other
// image uses the Linux 64-bit boot protocol (long mode, RSI pointing at
// struct boot_params, the "zero page").
//
// Every size, offset and count read from an image is validated before it is
// used: a malformed or hostile file yields an error, never a panic or a
// write outside guest RAM.
package loader

import (
	"errors"
	"fmt"
	"io"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// Sentinel errors. Every error returned by this package wraps one of them
// (test with errors.Is) and reads as one line starting with "loader: ".
var (
	// ErrNotKernel: the file is neither an ELF vmlinux nor a bzImage.
	ErrNotKernel = errors.New("loader: not a Linux kernel image")
	// ErrTruncated: the file ends before data its headers describe.
	ErrTruncated = errors.New("loader: image is truncated")
	// ErrUnsupported: a well-formed image this loader cannot boot
	// (wrong architecture, old boot protocol, no 64-bit entry).
	ErrUnsupported = errors.New("loader: unsupported image")
	// ErrInvalid: the image's headers contradict themselves or the
	// boot protocol, or a caller-supplied value is malformed.
	ErrInvalid = errors.New("loader: invalid image or boot parameter")
	// ErrTooLarge: something does not fit where it has to go (kernel in
	// RAM, initrd below its limit, command line in its buffer).
	ErrTooLarge = errors.New("loader: does not fit")
)

// Error is the concrete error type of this package. Kind is one of the
// sentinels above; Cause, when set, is the underlying I/O or memory error.
type Error struct {
	Kind  error
	Msg   string
	Cause error
}

// Error returns the one-line message.
func (e *Error) Error() string {
	if e.Cause != nil {
		return "loader: " + e.Msg + ": " + e.Cause.Error()
	}
	return "loader: " + e.Msg
}

// Unwrap exposes both the sentinel and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// errorf builds an *Error of the given kind.
func errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// wrapf builds an *Error of the given kind around cause.
func wrapf(kind, cause error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Cause: cause}
}

// Protocol is the entry convention a loaded kernel expects.
type Protocol int

const (
	// ProtocolPVH: vmlinux ELF with a Xen PVH entry note (ELF note type
	// 18, name "Xen"). 32-bit protected-mode entry with paging off;
	// EBX holds the GPA of struct hvm_start_info.
	ProtocolPVH Protocol = iota
	// ProtocolLinux64: the Linux 64-bit boot protocol. bzImage (entry =
	// load address + 0x200) or an ELF vmlinux without a PVH note (entry =
	// ELF e_entry, a physical address). Long mode with identity paging;
	// RSI holds the GPA of struct boot_params.
	ProtocolLinux64
)

// String names the protocol.
func (p Protocol) String() string {
	switch p {
	case ProtocolPVH:
		return "pvh"
	case ProtocolLinux64:
		return "linux64"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// Format is the file format a kernel was loaded from.
type Format int

const (
	// FormatELF is an uncompressed vmlinux ELF.
	FormatELF Format = iota
	// FormatBzImage is a bzImage (setup code plus compressed kernel).
	FormatBzImage
)

// String names the format.
func (f Format) String() string {
	switch f {
	case FormatELF:
		return "elf"
	case FormatBzImage:
		return "bzimage"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Kernel describes a kernel placed in guest memory.
type Kernel struct {
	Protocol Protocol
	Format   Format
	// Entry is the guest physical entry address.
	Entry uint64
	// ELFEntry is, for an ELF kernel, its e_entry (Linux's 64-bit
	// startup_64): with a PVH kernel the caller may switch Protocol to
	// ProtocolLinux64 and Entry to ELFEntry to boot through boot_params
	// instead. 0 for a bzImage or when e_entry is not inside the image.
	ELFEntry uint64
	// LoadAddr is the lowest GPA the image occupies.
	LoadAddr uint64
	// End is the first GPA after everything the kernel occupies or claims
	// before it reads its memory map, page aligned up. For a bzImage this
	// includes the init_size area the decompressor works in.
	End uint64
	// CmdlineMax is the longest command line (without its NUL) the kernel
	// accepts: the bzImage's cmdline_size. 0 means no limit beyond the
	// command-line buffer (x86.CmdlineMax-1).
	CmdlineMax uint64
	// InitrdAddrMax is the highest address the initrd may occupy (the
	// bzImage's initrd_addr_max). 0 means no limit beyond 4 GiB.
	InitrdAddrMax uint64
	// Setup holds the bzImage setup header bytes from file offset 0x1f1 to
	// the end the header declares (0x202 + the byte at 0x201), to be copied
	// into boot_params. Nil for an ELF kernel.
	Setup []byte
}

const (
	pageSize = 4096
	// headSize is how much of the file is read to tell formats apart and
	// parse the fixed headers: the ELF header or the bzImage setup header.
	headSize = hdrMaxEnd
)

// LoadKernel detects an ELF vmlinux or a bzImage from its first bytes and
// loads it into mem. size is the file size; r must hold that many bytes.
// On error, guest memory may hold part of the image.
func LoadKernel(mem *guestmem.Memory, r io.ReaderAt, size int64) (*Kernel, error) {
	if size < 0 {
		return nil, errorf(ErrInvalid, "negative kernel file size %d", size)
	}
	if size < 4 {
		return nil, errorf(ErrNotKernel, "file of %d bytes is not a kernel image", size)
	}
	head := make([]byte, min(size, headSize))
	if err := readFull(r, head, 0); err != nil {
		return nil, err
	}
	if isELF(head) {
		return loadELF(mem, r, uint64(size), head)
	}
	if isBzImage(head) {
		return loadBzImage(mem, r, uint64(size), head)
	}
	return nil, errorf(ErrNotKernel, "file is neither an ELF vmlinux nor a bzImage")
}

// readFull reads len(p) bytes at off, reporting a short file as ErrTruncated.
func readFull(r io.ReaderAt, p []byte, off uint64) error {
	if off > 1<<63-1 {
		return errorf(ErrTruncated, "offset %#x is beyond any file", off)
	}
	n, err := r.ReadAt(p, int64(off))
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf(ErrTruncated, "file ends at %#x, inside data expected up to %#x", off+uint64(n), off+uint64(len(p)))
	}
	return wrapf(ErrTruncated, err, "reading %d bytes at offset %#x", len(p), off)
}

// readInto copies n file bytes at off into guest memory at gpa. The range
// must lie in one RAM region (checked by the caller).
func readInto(mem *guestmem.Memory, r io.ReaderAt, off, gpa, n uint64) error {
	if n == 0 {
		return nil
	}
	dst, err := mem.Slice(gpa, n)
	if err != nil {
		return wrapf(ErrTooLarge, err, "%#x+%#x is not guest RAM", gpa, n)
	}
	return readFull(r, dst, off)
}

// firstRegionEnd is the end of the RAM region at GPA 0, where a kernel and
// its boot data must live; 0 if there is none.
func firstRegionEnd(mem *guestmem.Memory) uint64 {
	regs := mem.Regions()
	if len(regs) == 0 || regs[0].GPA != 0 {
		return 0
	}
	return regs[0].Size
}

// alignUp rounds v up to a multiple of a (a power of two); ok is false on
// overflow.
func alignUp(v, a uint64) (r uint64, ok bool) {
	r = (v + a - 1) &^ (a - 1)
	return r, r >= v
}

// human formats a byte count for people: "128 MiB", "15.6 MiB", "300 KiB".
func human(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// fourGiB bounds 32-bit boot pointers.
const fourGiB = 1 << 32
