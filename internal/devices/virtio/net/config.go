package net

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrConfig reports an invalid network device specification.
var ErrConfig = errors.New("net: invalid configuration")

// Limits of a configuration.
const (
	// MaxQueuePairs bounds the queue pairs of one device: each has a
	// worker goroutine and a TAP queue.
	MaxQueuePairs = 16
	// MinMTU and MaxMTU bound the MTU offered to the guest (IPv4's
	// minimum and the largest frame a TAP carries).
	MinMTU = 68
	MaxMTU = 65535 - ethHeaderLen
	// maxIfName is IFNAMSIZ less the terminating NUL.
	maxIfName = 15
)

// Config configures one virtio-net device backed by a host TAP.
type Config struct {
	// ID names the interface in logs and APIs (Firecracker's iface_id);
	// empty means the TAP name.
	ID string
	// Tap is the host TAP interface; Vireo creates it when it does not
	// exist.
	Tap string
	// MAC is the guest's address; the zero value means DefaultMAC(Tap).
	MAC MAC
	// Queues is the number of receive/transmit queue pairs; 0 means 1.
	// With more than one the guest may spread traffic over them
	// (VIRTIO_NET_F_MQ) and the TAP is opened multi-queue.
	Queues int
	// MTU is offered to the guest (VIRTIO_NET_F_MTU); 0 offers none and
	// the guest uses 1500. The TAP's own MTU is the user's to set.
	MTU int
}

// MAC is an Ethernet address.
type MAC [6]byte

// String formats the address as six colon-separated hex bytes.
func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// IsZero reports whether the address is all zeros (unset).
func (m MAC) IsZero() bool { return m == MAC{} }

// ParseMAC parses "xx:xx:xx:xx:xx:xx" (or with dashes) and requires a
// unicast address.
func ParseMAC(s string) (MAC, error) {
	var m MAC
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '-' })
	if len(parts) != 6 || len(s) != 17 {
		return m, fmt.Errorf("%w: MAC %q: want six hex bytes like 02:00:00:00:00:01", ErrConfig, s)
	}
	for i, p := range parts {
		b, err := hex.DecodeString(p)
		if err != nil || len(b) != 1 {
			return m, fmt.Errorf("%w: MAC %q: %q is not a hex byte", ErrConfig, s, p)
		}
		m[i] = b[0]
	}
	if m[0]&1 != 0 {
		return m, fmt.Errorf("%w: MAC %s is a multicast address", ErrConfig, m)
	}
	if m.IsZero() {
		return m, fmt.Errorf("%w: MAC %s is all zeros", ErrConfig, m)
	}
	return m, nil
}

// DefaultMAC is the address a device on TAP tap gets when none is given:
// locally administered, unicast, and the same every time for the same TAP
// name, so a guest keeps its address across reboots and runs.
func DefaultMAC(tap string) MAC {
	h := sha256.Sum256([]byte("vireo-net:" + tap))
	return MAC{0x02, h[0], h[1], h[2], h[3], h[4]}
}

// Normalized returns the configuration with defaults filled in, or an
// error naming the first invalid setting.
func (c Config) Normalized() (Config, error) {
	if c.Tap == "" {
		return c, fmt.Errorf("%w: no tap= interface name", ErrConfig)
	}
	if len(c.Tap) > maxIfName || strings.ContainsAny(c.Tap, "/: \t\n\x00") || c.Tap == "." || c.Tap == ".." {
		return c, fmt.Errorf("%w: tap=%q is not a valid interface name (at most %d bytes, no '/', ':' or spaces)", ErrConfig, c.Tap, maxIfName)
	}
	if c.Queues == 0 {
		c.Queues = 1
	}
	if c.Queues < 1 || c.Queues > MaxQueuePairs {
		return c, fmt.Errorf("%w: queues=%d: want 1 to %d", ErrConfig, c.Queues, MaxQueuePairs)
	}
	if c.MTU != 0 && (c.MTU < MinMTU || c.MTU > MaxMTU) {
		return c, fmt.Errorf("%w: mtu=%d: want %d to %d", ErrConfig, c.MTU, MinMTU, MaxMTU)
	}
	if c.MAC.IsZero() {
		c.MAC = DefaultMAC(c.Tap)
	} else if c.MAC[0]&1 != 0 {
		return c, fmt.Errorf("%w: mac=%s is a multicast address", ErrConfig, c.MAC)
	}
	if c.ID == "" {
		c.ID = c.Tap
	}
	return c, nil
}

// ParseConfig parses a command-line specification
// "tap=NAME[,mac=MAC][,queues=N][,mtu=N][,id=NAME]".
func ParseConfig(s string) (Config, error) {
	var c Config
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return Config{}, fmt.Errorf("%w: expected key=value, got %q", ErrConfig, kv)
		}
		if seen[k] {
			return Config{}, fmt.Errorf("%w: %s given twice", ErrConfig, k)
		}
		seen[k] = true
		switch k {
		case "tap":
			c.Tap = v
		case "id":
			c.ID = v
		case "mac":
			m, err := ParseMAC(v)
			if err != nil {
				return Config{}, err
			}
			c.MAC = m
		case "queues", "mtu":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return Config{}, fmt.Errorf("%w: %s=%s: want a positive number", ErrConfig, k, v)
			}
			if k == "queues" {
				c.Queues = n
			} else {
				c.MTU = n
			}
		default:
			return Config{}, fmt.Errorf("%w: unknown option %q (want tap, mac, queues, mtu or id)", ErrConfig, k)
		}
	}
	return c.Normalized()
}
