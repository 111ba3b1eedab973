package vmm

import (
	"errors"
	"fmt"
	"io"
	"slices"

	vconsole "github.com/vireo-vmm/vireo/internal/devices/virtio/console"
)

// ChannelConfig is a named virtio-console port (a "channel", such as
// org.qemu.guest_agent.0) whose host side is a Unix socket Vireo listens
// on. The guest sees it in /sys/class/virtio-ports/*/name, and udev links
// /dev/virtio-ports/NAME to it.
type ChannelConfig struct {
	// Name is the port name the guest sees.
	Name string
	// Socket is the path of the Unix socket; one client at a time.
	Socket string

	sock *vconsole.Socket // opened by the controller for the VM's lifetime
}

// ErrChannel reports an invalid channel configuration.
var ErrChannel = errors.New("invalid channel")

// validateChannels checks names and socket paths without touching the host.
func validateChannels(chans []ChannelConfig) error {
	if len(chans) > vconsole.MaxChannels {
		return fmt.Errorf("%w: %d channels, at most %d", ErrChannel, len(chans), vconsole.MaxChannels)
	}
	names, paths := map[string]bool{}, map[string]bool{}
	for _, c := range chans {
		if err := vconsole.ValidName(c.Name); err != nil {
			return fmt.Errorf("%w: %w", ErrChannel, err)
		}
		if c.Socket == "" {
			return fmt.Errorf("%w: channel %q has no socket path", ErrChannel, c.Name)
		}
		if names[c.Name] || paths[c.Socket] {
			return fmt.Errorf("%w: channel %q: name or socket %s used twice", ErrChannel, c.Name, c.Socket)
		}
		names[c.Name], paths[c.Socket] = true, true
	}
	return nil
}

// openChannels listens on every channel's socket. The sockets belong to
// the controller, not to a machine, so clients stay connected across guest
// resets. The returned function closes them (and removes the socket
// files); call it after the last machine is closed.
func (c *Controller) openChannels() (func(), error) {
	if len(c.cfg.Channels) == 0 {
		return func() {}, nil
	}
	if err := validateChannels(c.cfg.Channels); err != nil {
		return nil, err
	}
	log := c.cfg.Log
	chans := slices.Clone(c.cfg.Channels) // the caller's slice is not ours to fill in
	closeAll := func() {
		for _, ch := range chans {
			if ch.sock != nil {
				ch.sock.Close()
			}
		}
	}
	for i := range chans {
		s, err := vconsole.Listen(chans[i].Socket, log)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("channel %q: %w", chans[i].Name, err)
		}
		chans[i].sock = s
	}
	c.cfg.Channels = chans
	return closeAll, nil
}

// setupConsole adds the virtio consoles: with VirtioConsole, a single-port
// device whose port is the guest's hvc0; with channels, a multiport device
// carrying them. The console gets a device of its own because Linux makes
// a single-port device's console while probing it, early enough for
// console=hvc0, whereas a multiport device's console appears only after a
// round trip over its control queues.
func (m *Machine) setupConsole() error {
	if m.cfg.VirtioConsole {
		out := m.cfg.Console
		if out == nil {
			out = io.Discard
		}
		dev, err := vconsole.New(vconsole.Config{Console: &vconsole.ConsolePort{Output: out}})
		if err != nil {
			return err
		}
		if err := m.addVirtioMMIO(dev); err != nil {
			return err
		}
	}
	if len(m.cfg.Channels) == 0 {
		return nil
	}
	chans := make([]vconsole.Channel, len(m.cfg.Channels))
	for i, c := range m.cfg.Channels {
		if c.sock == nil {
			return fmt.Errorf("%w: channel %q: its socket is not open (channels need the controller)", ErrChannel, c.Name)
		}
		chans[i] = vconsole.Channel{Name: c.Name, Socket: c.sock}
	}
	dev, err := vconsole.New(vconsole.Config{Channels: chans})
	if err != nil {
		return err
	}
	return m.addVirtioMMIO(dev)
}

// inputSink takes host console input: the UART or the virtio console.
type inputSink interface {
	// Enqueue queues bytes for the guest and returns how many it took.
	Enqueue([]byte) int
}

// consoleSink is where host console input goes: the virtio console when
// it is the console, else the UART.
func (m *Machine) consoleSink() inputSink {
	if m.cfg.VirtioConsole {
		for _, t := range m.virtio.transports {
			if d, ok := t.Device().(*vconsole.Device); ok && d.HasConsole() {
				return d
			}
		}
	}
	return m.serial
}
