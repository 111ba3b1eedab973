package console

import (
	"errors"
	"fmt"
	"io"
)

// Limits of a device's configuration.
const (
	// MaxChannels bounds the named ports of one device (QEMU's
	// virtio-serial default of 31 ports), so 64 queues at most.
	MaxChannels = 31
	// MaxNameLen bounds a port name; Linux takes names up to its control
	// buffer size (a page).
	MaxNameLen = 127
	// DataQueueSize is the maximum size of the ports' queues.
	DataQueueSize = 128
	// ControlQueueSize is the maximum size of the control queues.
	ControlQueueSize = 32
)

// ErrConfig reports an invalid device configuration.
var ErrConfig = errors.New("virtio-console: invalid configuration")

// Config configures a virtio console device.
type Config struct {
	// Console, when set, makes port 0 a console (the guest's hvc0 if it is
	// the first virtio console).
	Console *ConsolePort
	// Channels are named ports 1 to n, each backed by a host socket. Any
	// channel makes the device multiport.
	Channels []Channel
	// OnPortOpen, if set, is called on the device's goroutine when the
	// guest opens or closes a channel (for events such as QMP's
	// VSERPORT_CHANGE). It must return quickly and not call the device.
	OnPortOpen func(name string, open bool)
}

// ConsolePort is the host side of a console port.
type ConsolePort struct {
	// Output receives the guest's console output; nil discards it. A
	// write error is logged once and the bytes are dropped, so a broken
	// output never stalls the guest.
	Output io.Writer
}

// Channel is a named port whose host side is a listening Unix socket.
type Channel struct {
	// Name is what the guest sees in /sys/class/virtio-ports/*/name.
	Name string
	// Socket is the host end; it outlives the device (see Socket).
	Socket *Socket
}

// multiport reports whether the configuration needs the control queues.
func (c *Config) multiport() bool { return len(c.Channels) > 0 }

// validate checks the configuration.
func (c *Config) validate() error {
	if c.Console == nil && len(c.Channels) == 0 {
		return fmt.Errorf("%w: neither a console nor a channel", ErrConfig)
	}
	if len(c.Channels) > MaxChannels {
		return fmt.Errorf("%w: %d channels, at most %d per device", ErrConfig, len(c.Channels), MaxChannels)
	}
	names := make(map[string]bool, len(c.Channels))
	socks := make(map[*Socket]bool, len(c.Channels))
	for _, ch := range c.Channels {
		if err := ValidName(ch.Name); err != nil {
			return err
		}
		if names[ch.Name] {
			return fmt.Errorf("%w: channel name %q is used twice", ErrConfig, ch.Name)
		}
		names[ch.Name] = true
		if ch.Socket == nil {
			return fmt.Errorf("%w: channel %q has no socket", ErrConfig, ch.Name)
		}
		if socks[ch.Socket] {
			return fmt.Errorf("%w: channel %q shares its socket with another channel", ErrConfig, ch.Name)
		}
		socks[ch.Socket] = true
	}
	return nil
}

// ValidName checks a port name: 1 to MaxNameLen letters, digits, dots,
// dashes, underscores or colons (org.qemu.guest_agent.0, com.redhat.spice.0).
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty port name", ErrConfig)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: port name of %d bytes, at most %d", ErrConfig, len(name), MaxNameLen)
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '-', r == '_', r == ':':
		default:
			return fmt.Errorf("%w: port name %q: character %q (want letters, digits, '.', '-', '_' or ':')", ErrConfig, name, r)
		}
	}
	return nil
}
