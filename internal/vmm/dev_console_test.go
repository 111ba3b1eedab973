package vmm

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenChannels(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
	orig := []ChannelConfig{{Name: "org.qemu.guest_agent.0", Socket: a}, {Name: "b", Socket: b}}
	c := &Controller{cfg: Config{Devices: Devices{Channels: orig}}}
	closeAll, err := c.openChannels()
	if err != nil {
		t.Fatal(err)
	}
	if orig[0].sock != nil {
		t.Error("openChannels wrote into the caller's configuration")
	}
	for _, ch := range c.cfg.Channels {
		if ch.sock == nil {
			t.Fatalf("channel %q not opened", ch.Name)
		}
	}
	conn, err := net.Dial("unix", a)
	if err != nil {
		t.Fatalf("connecting to the channel socket: %v", err)
	}
	conn.Close()
	closeAll()
	for _, p := range []string{a, b} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
}

func TestOpenChannelsErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for name, chans := range map[string][]ChannelConfig{
		"bad name":       {{Name: "a b", Socket: filepath.Join(dir, "x")}},
		"no socket":      {{Name: "a"}},
		"same name":      {{Name: "a", Socket: filepath.Join(dir, "x")}, {Name: "a", Socket: filepath.Join(dir, "y")}},
		"same socket":    {{Name: "a", Socket: filepath.Join(dir, "x")}, {Name: "b", Socket: filepath.Join(dir, "x")}},
		"not a socket":   {{Name: "a", Socket: filepath.Join(dir, "ok")}, {Name: "b", Socket: file}},
		"missing parent": {{Name: "a", Socket: filepath.Join(dir, "no", "x")}},
	} {
		c := &Controller{cfg: Config{Devices: Devices{Channels: chans}}}
		if _, err := c.openChannels(); err == nil {
			t.Errorf("%s: openChannels succeeded", name)
		}
	}
	// A failure part-way closes what was opened.
	if _, err := os.Lstat(filepath.Join(dir, "ok")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket of a failed start left behind: %v", err)
	}
	// Machines need the controller to open channels first.
	m := &Machine{cfg: Config{Devices: Devices{Channels: []ChannelConfig{{Name: "a", Socket: "/x"}}}}}
	if err := m.setupConsole(); !errors.Is(err, ErrChannel) {
		t.Errorf("setupConsole without open sockets: %v", err)
	}
}
