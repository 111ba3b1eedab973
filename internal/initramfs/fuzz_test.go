package initramfs

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// FuzzArchive adds entries with arbitrary paths, targets and contents and
// checks that every accepted entry decodes back exactly from a well-formed
// archive, and that every rejected one fails with a package error.
func FuzzArchive(f *testing.F) {
	f.Add("etc/motd", "/bin/busybox", []byte("hello"), uint16(0o644), uint8(0))
	f.Add("/a/b/c/", "x", []byte{}, uint16(0o7777), uint8(1))
	f.Add("a//b", "", []byte{0, 1, 2}, uint16(0), uint8(2))
	f.Add("../x", "t", []byte("abc"), uint16(0o755), uint8(3))
	f.Add("dev/ttyS0", "y", []byte("z"), uint16(0o660), uint8(3))
	f.Fuzz(func(t *testing.T, p, target string, data []byte, perm uint16, kind uint8) {
		var buf bytes.Buffer
		a := New(&buf)
		mode := fs.FileMode(perm) & (fs.ModePerm)
		// A sibling entry first, so parents and inode numbers get exercised.
		if err := a.File("first", 0o644, []byte("1")); err != nil {
			t.Fatal(err)
		}
		var err error
		var wantMode uint32
		var wantData []byte
		switch kind % 4 {
		case 0:
			err, wantMode, wantData = a.File(p, mode, data), modeReg|uint32(mode), data
		case 1:
			err, wantMode = a.Dir(p, mode), modeDir|uint32(mode)
		case 2:
			err, wantMode, wantData = a.Symlink(p, target), modeLink|0o777, []byte(target)
		case 3:
			err, wantMode = a.CharDev(p, mode, uint32(len(data)), uint32(perm)), modeChr|uint32(mode)
		}
		if err != nil {
			if !errors.Is(err, ErrBadPath) && !errors.Is(err, ErrExists) && !errors.Is(err, ErrNotDir) {
				t.Fatalf("unexpected error kind: %v", err)
			}
		}
		if cerr := a.Close(); cerr != nil {
			t.Fatalf("Close: %v", cerr)
		}
		recs, perr := parseNewc(buf.Bytes())
		if perr != nil {
			t.Fatalf("malformed archive: %v", perr)
		}
		if err != nil {
			return
		}
		name := strings.Trim(p, "/")
		r, ok := find(recs, name)
		if !ok {
			t.Fatalf("entry %q missing", name)
		}
		if r.mode != wantMode || !bytes.Equal(r.data, wantData) {
			t.Fatalf("%q: mode %o data %q, want %o %q", name, r.mode, r.data, wantMode, wantData)
		}
		inos := map[uint32]bool{}
		for _, r := range recs {
			if inos[r.ino] {
				t.Fatalf("inode %d reused", r.ino)
			}
			inos[r.ino] = true
		}
	})
}
