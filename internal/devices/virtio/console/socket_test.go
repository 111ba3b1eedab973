package console

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenReplacesStaleSocket(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	// Another listener on the path: refused.
	if _, err := Listen(p, quiet); !errors.Is(err, ErrSocketInUse) {
		t.Fatalf("Listen on a live socket: %v", err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	// The socket file it left behind is stale: replaced.
	s, err := Listen(p, quiet)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	c, err := net.Dial("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left after Close: %v", err)
	}
}

func TestListenRefusals(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep me"), 0o644)
	if _, err := Listen(file, quiet); !errors.Is(err, ErrSocketPath) {
		t.Errorf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Error("a regular file was touched")
	}
	if _, err := Listen("", quiet); !errors.Is(err, ErrSocketPath) {
		t.Errorf("empty path: %v", err)
	}
	long := filepath.Join(dir, strings.Repeat("x", 120))
	if _, err := Listen(long, quiet); !errors.Is(err, ErrSocketPath) {
		t.Errorf("long path: %v", err)
	}
	if _, err := Listen(filepath.Join(dir, "missing", "s"), quiet); err == nil {
		t.Error("Listen in a missing directory succeeded")
	}
}

// TestCloseKeepsForeignFile: Close does not remove a file that replaced
// the socket.
func TestCloseKeepsForeignFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s")
	s, err := Listen(p, quiet)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	os.WriteFile(p, []byte("new"), 0o644)
	s.Close()
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Error("Close removed a file it did not create")
	}
}

func TestBuffer(t *testing.T) {
	b := newBuffer(8)
	n := copy(b.room(), "abcdef")
	b.commit(n)
	b.consume(4)
	if string(b.data()) != "ef" {
		t.Fatalf("data %q", b.data())
	}
	if r := b.room(); len(r) != 6 || string(b.data()) != "ef" {
		t.Fatalf("room %d after compaction, data %q", len(r), b.data())
	}
	b.commit(copy(b.room(), "ghijklmn"))
	if string(b.data()) != "efghijkl" || len(b.room()) != 0 {
		t.Fatalf("full buffer %q", b.data())
	}
	b.consume(100)
	if b.len() != 0 || len(b.room()) != 8 {
		t.Error("consume past the end")
	}
}
