package qmp

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
)

// Spec is a parsed --qmp argument, in QEMU's chardev syntax:
//
//	unix:PATH[,server=on][,wait=off]
//	tcp:HOST:PORT[,server=on][,wait=off]
//
// Vireo is always the server. Unlike QEMU, wait defaults to off: with
// wait=on the VM starts only once a first client has connected.
type Spec struct {
	Network string // "unix" or "tcp"
	Address string // socket path or host:port
	Wait    bool
}

func (s Spec) String() string { return s.Network + ":" + s.Address }

// ParseSpec parses a --qmp argument.
func ParseSpec(arg string) (Spec, error) {
	parts := strings.Split(arg, ",")
	network, addr, ok := strings.Cut(parts[0], ":")
	if !ok || addr == "" {
		return Spec{}, fmt.Errorf("%w %q: want unix:PATH or tcp:HOST:PORT", ErrSpec, arg)
	}
	sp := Spec{Network: network, Address: addr}
	switch network {
	case "unix":
	case "tcp":
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return Spec{}, fmt.Errorf("%w %q: want tcp:HOST:PORT", ErrSpec, arg)
		}
	default:
		return Spec{}, fmt.Errorf("%w %q: unknown socket type %q (want unix or tcp)", ErrSpec, arg, network)
	}
	for _, opt := range parts[1:] {
		key, val, hasVal := strings.Cut(opt, "=")
		on := true
		if hasVal {
			switch val {
			case "on", "yes", "true":
			case "off", "no", "false":
				on = false
			default:
				return Spec{}, fmt.Errorf("%w %q: %s=%s: want on or off", ErrSpec, arg, key, val)
			}
		}
		switch key {
		case "server":
			if !on {
				return Spec{}, fmt.Errorf("%w %q: Vireo only listens (server=off is not supported)", ErrSpec, arg)
			}
		case "wait":
			sp.Wait = on
		case "nowait":
			sp.Wait = false
		default:
			return Spec{}, fmt.Errorf("%w %q: unknown option %q (want server or wait)", ErrSpec, arg, key)
		}
	}
	return sp, nil
}

// Listen opens the spec's listening socket. A stale Unix socket left at
// the path by an earlier run is replaced; any other file there is an
// error. The socket file is removed when the listener closes.
func (s Spec) Listen() (net.Listener, error) {
	if s.Network == "unix" {
		if st, err := os.Lstat(s.Address); err == nil {
			if st.Mode().Type() != fs.ModeSocket {
				return nil, fmt.Errorf("qmp: %s exists and is not a socket", s.Address)
			}
			if err := os.Remove(s.Address); err != nil {
				return nil, fmt.Errorf("qmp: removing stale socket: %w", err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("qmp: %w", err)
		}
	}
	l, err := net.Listen(s.Network, s.Address)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	return l, nil
}
