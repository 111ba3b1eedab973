package initramfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// record is one decoded newc entry.
type record struct {
	ino, mode, uid, gid, nlink, mtime uint32
	major, minor, rmajor, rminor      uint32
	name                              string
	data                              []byte
}

// parseNewc decodes a newc archive strictly: magic, upper-case hex fields,
// NUL-terminated names, four-byte alignment of names and data, a zero
// checksum, and a final TRAILER!!! record followed by nothing.
func parseNewc(b []byte) ([]record, error) {
	var out []record
	off := 0
	for {
		if len(b)-off < headerSize {
			return nil, fmt.Errorf("offset %d: short header", off)
		}
		h := b[off : off+headerSize]
		if string(h[:6]) != magic {
			return nil, fmt.Errorf("offset %d: magic %q", off, h[:6])
		}
		var f [13]uint32
		for i := range f {
			s := string(h[6+8*i : 14+8*i])
			if strings.ToUpper(s) != s {
				return nil, fmt.Errorf("offset %d: field %d %q not upper case", off, i, s)
			}
			v, err := strconv.ParseUint(s, 16, 32)
			if err != nil {
				return nil, fmt.Errorf("offset %d: field %d: %w", off, i, err)
			}
			f[i] = uint32(v)
		}
		if f[12] != 0 {
			return nil, fmt.Errorf("offset %d: checksum %#x", off, f[12])
		}
		namesize, size := int(f[11]), int(f[6])
		off += headerSize
		if namesize < 2 || len(b)-off < namesize {
			return nil, fmt.Errorf("offset %d: namesize %d", off, namesize)
		}
		if b[off+namesize-1] != 0 || bytes.IndexByte(b[off:off+namesize-1], 0) >= 0 {
			return nil, fmt.Errorf("offset %d: name not NUL terminated", off)
		}
		name := string(b[off : off+namesize-1])
		var err error
		if off, err = skipPad(b, off+namesize); err != nil {
			return nil, err
		}
		if name == trailer {
			if off != len(b) {
				return nil, fmt.Errorf("%d bytes after the trailer", len(b)-off)
			}
			return out, nil
		}
		if len(b)-off < size {
			return nil, fmt.Errorf("%s: short data", name)
		}
		r := record{
			ino: f[0], mode: f[1], uid: f[2], gid: f[3], nlink: f[4], mtime: f[5],
			major: f[7], minor: f[8], rmajor: f[9], rminor: f[10], name: name,
			data: b[off : off+size],
		}
		if off, err = skipPad(b, off+size); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
}

// skipPad checks the zero padding that aligns off to four bytes.
func skipPad(b []byte, off int) (int, error) {
	for off%4 != 0 {
		if off >= len(b) || b[off] != 0 {
			return 0, fmt.Errorf("offset %d: bad padding", off)
		}
		off++
	}
	return off, nil
}

func mustParse(t *testing.T, b []byte) []record {
	t.Helper()
	recs, err := parseNewc(b)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return recs
}

func find(recs []record, name string) (record, bool) {
	for _, r := range recs {
		if r.name == name {
			return r, true
		}
	}
	return record{}, false
}

func TestEmptyArchiveBytes(t *testing.T) {
	var buf bytes.Buffer
	if err := New(&buf).Close(); err != nil {
		t.Fatal(err)
	}
	want := "070701" + "00000000" + "00000000" + "00000000" + "00000000" + "00000001" +
		"00000000" + "00000000" + "00000000" + "00000000" + "00000000" + "00000000" +
		"0000000B" + "00000000" + "TRAILER!!!\x00" + "\x00\x00\x00"
	if got := buf.String(); got != want {
		t.Fatalf("empty archive:\n got %q\nwant %q", got, want)
	}
}

func TestFileBytes(t *testing.T) {
	var buf bytes.Buffer
	a := New(&buf)
	if err := a.File("/init", 0o755, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// ino 1, mode 0100755, uid 0, gid 0, nlink 1, mtime 0, size 5,
	// dev 0:0, rdev 0:0, namesize 5, check 0.
	want := "070701" + "00000001" + "000081ED" + "00000000" + "00000000" + "00000001" +
		"00000000" + "00000005" + "00000000" + "00000000" + "00000000" + "00000000" +
		"00000005" + "00000000" + "init\x00" + "\x00" + "hello" + "\x00\x00\x00"
	if got := buf.String()[:len(want)]; got != want {
		t.Fatalf("file record:\n got %q\nwant %q", got, want)
	}
	if buf.Len()%4 != 0 {
		t.Fatalf("archive length %d not a multiple of 4", buf.Len())
	}
}

func TestEntryKinds(t *testing.T) {
	var buf bytes.Buffer
	a := New(&buf)
	steps := []error{
		a.Dir("/etc", 0o755),
		a.Dir("tmp/", 0o777|fs.ModeSticky),
		a.File("etc/motd", 0o644, []byte("hi\n")),
		a.File("usr/bin/tool", 0o4755, nil),
		a.File("usr/bin/setuid", 0o755|fs.ModeSetuid|fs.ModeSetgid, []byte("x")),
		a.Symlink("bin/sh", "/bin/busybox"),
		a.CharDev("dev/ttyS0", 0o660, 4, 64),
		a.Close(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	recs := mustParse(t, buf.Bytes())
	var names []string
	inos := map[uint32]bool{}
	for _, r := range recs {
		names = append(names, r.name)
		if inos[r.ino] {
			t.Errorf("%s: inode %d reused", r.name, r.ino)
		}
		inos[r.ino] = true
		if r.uid != 0 || r.gid != 0 || r.mtime != 0 {
			t.Errorf("%s: uid %d gid %d mtime %d, want zeros", r.name, r.uid, r.gid, r.mtime)
		}
	}
	wantNames := []string{"etc", "tmp", "etc/motd", "usr", "usr/bin", "usr/bin/tool",
		"usr/bin/setuid", "bin", "bin/sh", "dev", "dev/ttyS0"}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("names %q, want %q", names, wantNames)
	}
	check := func(name string, mode, nlink uint32, data string) {
		t.Helper()
		r, _ := find(recs, name)
		if r.mode != mode || r.nlink != nlink || string(r.data) != data {
			t.Errorf("%s: mode %o nlink %d data %q, want %o %d %q", name, r.mode, r.nlink, r.data, mode, nlink, data)
		}
	}
	check("etc", 0o40755, 2, "")
	check("tmp", 0o41777, 2, "")
	check("usr", 0o40755, 2, "")
	check("etc/motd", 0o100644, 1, "hi\n")
	check("usr/bin/tool", 0o100755, 1, "") // 0o4755 has no fs.ModeSetuid
	check("usr/bin/setuid", 0o106755, 1, "x")
	check("bin/sh", 0o120777, 1, "/bin/busybox")
	check("dev/ttyS0", 0o20660, 1, "")
	if r, _ := find(recs, "dev/ttyS0"); r.rmajor != 4 || r.rminor != 64 || r.major != 0 || r.minor != 0 {
		t.Errorf("dev/ttyS0: rdev %d:%d dev %d:%d, want 4:64 0:0", r.rmajor, r.rminor, r.major, r.minor)
	}
}

func TestPathErrors(t *testing.T) {
	var buf bytes.Buffer
	a := New(&buf)
	for _, p := range []string{"", "/", "//", "a//b", "./a", "a/../b", "..", "a/.", "nul\x00"} {
		if err := a.File(p, 0o644, nil); !errors.Is(err, ErrBadPath) {
			t.Errorf("File(%q) = %v, want ErrBadPath", p, err)
		}
	}
	if err := a.Symlink("l", ""); !errors.Is(err, ErrBadPath) {
		t.Errorf("Symlink with empty target = %v, want ErrBadPath", err)
	}
	long := strings.Repeat("x", 4096)
	if err := a.File(long, 0o644, nil); !errors.Is(err, ErrBadPath) {
		t.Errorf("File with a %d-byte name = %v, want ErrBadPath", len(long), err)
	}
	if err := a.Symlink("l", long+"x"); !errors.Is(err, ErrBadPath) {
		t.Errorf("Symlink with a %d-byte target = %v, want ErrBadPath", len(long)+1, err)
	}
	if err := a.File(long[:4095], 0o644, nil); err != nil {
		t.Errorf("File with a 4095-byte name = %v", err)
	}
	if err := a.File("f", 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.File("/f", 0o644, nil); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate file = %v, want ErrExists", err)
	}
	if err := a.Dir("f", 0o755); !errors.Is(err, ErrExists) {
		t.Errorf("Dir over a file = %v, want ErrExists", err)
	}
	if err := a.File("f/g", 0o644, nil); !errors.Is(err, ErrNotDir) {
		t.Errorf("file under a file = %v, want ErrNotDir", err)
	}
	if err := a.Dir("d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := a.Dir("d", 0o755); err != nil {
		t.Errorf("repeated Dir with the same mode = %v, want nil", err)
	}
	if err := a.Dir("d", 0o700); !errors.Is(err, ErrExists) {
		t.Errorf("repeated Dir with another mode = %v, want ErrExists", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	recs := mustParse(t, buf.Bytes())
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3 (the long name, f, d)", len(recs))
	}
	if err := a.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if err := a.Dir("late", 0o755); !errors.Is(err, ErrClosed) {
		t.Errorf("Dir after Close = %v, want ErrClosed", err)
	}
}

// failWriter fails every write after the first n bytes.
type failWriter struct{ n int }

var errDisk = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		n := w.n
		w.n = 0
		return n, errDisk
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteErrorIsSticky(t *testing.T) {
	a := New(&failWriter{n: 100})
	big := make([]byte, 128<<10) // larger than the internal buffer
	if err := a.File("big", 0o644, big); !errors.Is(err, errDisk) {
		t.Fatalf("File = %v, want %v", err, errDisk)
	}
	if err := a.Dir("d", 0o755); !errors.Is(err, errDisk) {
		t.Errorf("Dir after a failed write = %v, want %v", err, errDisk)
	}
	if err := a.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close after a failed write = %v, want %v", err, errDisk)
	}
}

func TestFlushErrorOnClose(t *testing.T) {
	a := New(&failWriter{n: 10})
	if err := a.File("small", 0o644, []byte("x")); err != nil {
		t.Fatalf("buffered File = %v", err)
	}
	if err := a.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close = %v, want %v", err, errDisk)
	}
}

func TestDeterministic(t *testing.T) {
	build := func() []byte {
		var buf bytes.Buffer
		a := New(&buf)
		_ = a.File("a/b/c", 0o644, []byte("data"))
		_ = a.Symlink("a/l", "b/c")
		_ = a.Close()
		return buf.Bytes()
	}
	if !bytes.Equal(build(), build()) {
		t.Fatal("equal input gave different archives")
	}
}

// TestCpioTool checks that GNU cpio reads the archive.
func TestCpioTool(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("cpio not installed")
	}
	var buf bytes.Buffer
	a := New(&buf)
	for i, err := range []error{
		a.Dir("etc", 0o755),
		a.File("etc/hostname", 0o644, []byte("vireo\n")),
		a.File("init", 0o755, []byte("#!/bin/sh\n")),
		a.Symlink("bin/sh", "/bin/busybox"),
		a.CharDev("dev/console", 0o600, 5, 1),
		a.Close(),
	} {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	file := filepath.Join(t.TempDir(), "a.cpio")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(cpio, args...)
		in, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		cmd.Stdin = in
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cpio %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out)
	}
	list := strings.Fields(run("-t", "--quiet"))
	want := []string{"etc", "etc/hostname", "init", "bin", "bin/sh", "dev", "dev/console"}
	if !slices.Equal(list, want) {
		t.Errorf("cpio -t: %q, want %q", list, want)
	}
	if got := run("-i", "--quiet", "--to-stdout", "etc/hostname"); got != "vireo\n" {
		t.Errorf("cpio --to-stdout etc/hostname: %q", got)
	}
	verbose := run("-t", "-v", "--quiet")
	for _, frag := range []string{"crw-------", "lrwxrwxrwx", "bin/sh -> /bin/busybox", "-rwxr-xr-x", "drwxr-xr-x"} {
		if !strings.Contains(verbose, frag) {
			t.Errorf("cpio -tv output lacks %q:\n%s", frag, verbose)
		}
	}
}
