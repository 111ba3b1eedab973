package qmp

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Spec
	}{
		{"unix:/run/q.sock", Spec{Network: "unix", Address: "/run/q.sock"}},
		{"unix:/run/q.sock,server=on,wait=off", Spec{Network: "unix", Address: "/run/q.sock"}},
		{"unix:/run/q.sock,server,nowait", Spec{Network: "unix", Address: "/run/q.sock"}},
		{"unix:/run/q.sock,server=on,wait=on", Spec{Network: "unix", Address: "/run/q.sock", Wait: true}},
		{"tcp:127.0.0.1:4444", Spec{Network: "tcp", Address: "127.0.0.1:4444"}},
		{"tcp::4444,server=on,wait=off", Spec{Network: "tcp", Address: ":4444"}},
		{"tcp:[::1]:4444", Spec{Network: "tcp", Address: "[::1]:4444"}},
	} {
		got, err := ParseSpec(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"", "unix:", "/run/q.sock", "stdio", "udp:1.2.3.4:5", "tcp:host", "unix:/x,server=off", "unix:/x,wait=maybe", "unix:/x,telnet=on"} {
		if _, err := ParseSpec(bad); !errors.Is(err, ErrSpec) {
			t.Errorf("%q: err %v, want ErrSpec", bad, err)
		}
	}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.sock")
	sp := Spec{Network: "unix", Address: path}
	// A socket left behind by a process that died is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	l, err := sp.Listen()
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	l.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left after Close: %v", err)
	}
	// A regular file is never removed.
	if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Listen(); err == nil {
		t.Error("listened over a regular file")
	}
	if b, _ := os.ReadFile(path); string(b) != "keep" {
		t.Error("regular file clobbered")
	}
}
