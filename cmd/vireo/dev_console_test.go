package main

import (
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/vmm"
)

func TestChannelFlag(t *testing.T) {
	var d vmm.Devices
	f := &channelFlag{d: &d}
	if err := f.Set("name=org.qemu.guest_agent.0,socket=/run/ga.sock"); err != nil {
		t.Fatal(err)
	}
	if err := f.Set("socket=/run/b.sock,name=b"); err != nil {
		t.Fatal(err)
	}
	if len(d.Channels) != 2 || d.Channels[0].Name != "org.qemu.guest_agent.0" || d.Channels[1].Socket != "/run/b.sock" {
		t.Fatalf("channels %+v", d.Channels)
	}
	if s := f.String(); !strings.Contains(s, "name=b,socket=/run/b.sock") {
		t.Errorf("String() = %q", s)
	}
	for in, want := range map[string]string{
		"name=b,socket=/run/c.sock":  `"b" is used twice`,
		"name=c,socket=/run/b.sock":  "/run/b.sock is used twice",
		"name=c":                     "no socket=PATH",
		"socket=/x":                  "no name=NAME",
		"name=a/b,socket=/x":         "name=a/b",
		"name=c,socket=/x,speed=9":   `unknown channel option "speed"`,
		"name=c,socket":              `"socket": want key=value`,
		"name=c,socket=":             "needs a path",
		"name=,socket=/x":            "name=",
		"name=c d,socket=/x":         "character",
		"name=c,socket=/x,name=d/..": "name=d/..",
	} {
		err := f.Set(in)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Set(%q) = %v, want an error mentioning %q", in, err, want)
		}
	}
	if len(d.Channels) != 2 {
		t.Errorf("failed flags added channels: %+v", d.Channels)
	}
}

func TestVirtioConsoleCmdline(t *testing.T) {
	for in, want := range map[string]string{
		"console=ttyS0 quiet panic=-1":            "console=hvc0 quiet panic=-1",
		"quiet console=ttyS0,115200 console=tty0": "quiet console=hvc0",
		"quiet": "console=hvc0 quiet",
		"":      "console=hvc0",
	} {
		if got := hvcCmdline(in); got != want {
			t.Errorf("hvcCmdline(%q) = %q, want %q", in, got, want)
		}
	}
	cfg := vmm.Config{Cmdline: "console=ttyS0 quiet"}
	useVirtioConsole(&cfg, true)
	if !cfg.VirtioConsole || cfg.Cmdline != "console=ttyS0 quiet" {
		t.Errorf("with --cmdline given: %+v", cfg)
	}
	useVirtioConsole(&cfg, false)
	if cfg.Cmdline != "console=hvc0 quiet" {
		t.Errorf("default command line became %q", cfg.Cmdline)
	}
}

func TestRunFlagsChannel(t *testing.T) {
	f, err := parseRunFlags([]string{"--console", "virtio", "--channel", "name=a,socket=/tmp/a", "--channel", "name=b,socket=/tmp/b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.console != "virtio" || len(f.devices.Channels) != 2 {
		t.Errorf("console %q, channels %+v", f.console, f.devices.Channels)
	}
	if _, err := parseRunFlags([]string{"--channel", "name=a"}, nil); err == nil || !strings.Contains(err.Error(), "socket") {
		t.Errorf("--channel without a socket: %v", err)
	}
}
