package migration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// ErrURI reports a migration address that cannot be used.
var ErrURI = errors.New("migration: invalid URI")

// URI is a parsed migration address: "tcp:HOST:PORT" or "unix:PATH",
// as QEMU writes them.
type URI struct {
	Network string // "tcp" or "unix"
	Address string // HOST:PORT or PATH
}

func (u URI) String() string { return u.Network + ":" + u.Address }

// ParseURI parses a migration address.
func ParseURI(s string) (URI, error) {
	scheme, addr, ok := strings.Cut(s, ":")
	if !ok || addr == "" {
		return URI{}, fmt.Errorf("%w %q: want tcp:HOST:PORT or unix:PATH", ErrURI, s)
	}
	switch scheme {
	case "tcp":
		host, port, err := net.SplitHostPort(addr)
		if err != nil || port == "" {
			return URI{}, fmt.Errorf("%w %q: want tcp:HOST:PORT", ErrURI, s)
		}
		_ = host // an empty host listens on every address, as in QEMU
	case "unix":
	default:
		return URI{}, fmt.Errorf("%w %q: unsupported scheme %q (want tcp or unix)", ErrURI, s, scheme)
	}
	return URI{Network: scheme, Address: addr}, nil
}

// dialTimeout bounds connecting to the target.
const dialTimeout = 10 * time.Second

// Dial connects to a target listening on u.
func (u URI) Dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, u.Network, u.Address)
	if err != nil {
		return nil, fmt.Errorf("migration: connecting to %s: %w", u, err)
	}
	return c, nil
}

// Listen listens on u for the source's connection.
func (u URI) Listen() (net.Listener, error) {
	l, err := net.Listen(u.Network, u.Address)
	if err != nil {
		return nil, fmt.Errorf("migration: listening on %s: %w", u, err)
	}
	return l, nil
}
