package main

import (
	"flag"
	"fmt"
	"strings"

	vconsole "github.com/vireo-vmm/vireo/internal/devices/virtio/console"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// consoleFlags registers --channel (repeatable). --console virtio itself
// is a --console spec (flags.go); useVirtioConsole applies it.
func consoleFlags(fs *flag.FlagSet, d *vmm.Devices) {
	fs.Var(&channelFlag{d: d}, "channel", "add a named virtio-console port: name=NAME,socket=PATH (Vireo listens on the Unix socket PATH, one client at a time); repeatable")
}

// channelFlag is --channel: each use adds one channel.
type channelFlag struct{ d *vmm.Devices }

func (c *channelFlag) String() string {
	if c.d == nil {
		return ""
	}
	var parts []string
	for _, ch := range c.d.Channels {
		parts = append(parts, "name="+ch.Name+",socket="+ch.Socket)
	}
	return strings.Join(parts, " ")
}

func (c *channelFlag) Set(s string) error {
	ch, err := parseChannel(s)
	if err != nil {
		return err
	}
	for _, o := range c.d.Channels {
		if o.Name == ch.Name {
			return fmt.Errorf("channel name %q is used twice", ch.Name)
		}
		if o.Socket == ch.Socket {
			return fmt.Errorf("channel socket %s is used twice", ch.Socket)
		}
	}
	if len(c.d.Channels) >= vconsole.MaxChannels {
		return fmt.Errorf("at most %d channels", vconsole.MaxChannels)
	}
	c.d.Channels = append(c.d.Channels, ch)
	return nil
}

// parseChannel parses "name=NAME,socket=PATH".
func parseChannel(s string) (vmm.ChannelConfig, error) {
	var ch vmm.ChannelConfig
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return ch, fmt.Errorf("channel option %q: want key=value", kv)
		}
		switch k {
		case "name":
			if err := vconsole.ValidName(v); err != nil {
				return ch, fmt.Errorf("channel name=%s: %s", v, strings.TrimPrefix(err.Error(), vconsole.ErrConfig.Error()+": "))
			}
			ch.Name = v
		case "socket", "path":
			if v == "" {
				return ch, fmt.Errorf("channel socket= needs a path")
			}
			ch.Socket = v
		default:
			return ch, fmt.Errorf("unknown channel option %q (want name, socket)", k)
		}
	}
	switch {
	case ch.Name == "":
		return ch, fmt.Errorf("channel %q has no name=NAME", s)
	case ch.Socket == "":
		return ch, fmt.Errorf("channel %q has no socket=PATH", s)
	}
	return ch, nil
}

// useVirtioConsole applies --console virtio: the host console moves to a
// virtio console (the guest's hvc0), and, unless the user gave --cmdline,
// the default command line's console=ttyS0 becomes console=hvc0.
func useVirtioConsole(cfg *vmm.Config, cmdlineSet bool) {
	cfg.VirtioConsole = true
	if !cmdlineSet {
		cfg.Cmdline = hvcCmdline(cfg.Cmdline)
	}
}

// hvcCmdline replaces the console= parameters of a command line with
// console=hvc0 (added when there is none).
func hvcCmdline(cmdline string) string {
	var out []string
	replaced := false
	for _, f := range strings.Fields(cmdline) {
		if strings.HasPrefix(f, "console=") {
			if !replaced {
				out = append(out, "console=hvc0")
				replaced = true
			}
			continue
		}
		out = append(out, f)
	}
	if !replaced {
		out = append([]string{"console=hvc0"}, out...)
	}
	return strings.Join(out, " ")
}
