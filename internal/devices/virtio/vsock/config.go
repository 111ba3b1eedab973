package vsock

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrConfig reports an invalid vsock specification.
var ErrConfig = errors.New("vsock: invalid configuration")

// maxPathLen is the longest host socket path: sun_path holds 108 bytes
// with the terminating NUL.
const maxPathLen = 107

// Config configures the vsock device and its Unix-socket backend.
type Config struct {
	// CID is the guest's context ID, MinGuestCID to MaxGuestCID.
	CID uint64
	// UDSPath is the host Unix socket Vireo listens on for host-initiated
	// connections ("CONNECT <port>\n"); connections the guest opens to
	// host port P go to the socket UDSPath_P.
	UDSPath string
}

// Validate checks the CID range and the socket path.
func (c Config) Validate() error {
	if c.CID < MinGuestCID || c.CID > MaxGuestCID {
		return fmt.Errorf("%w: cid %d is reserved or too large (want %d to %d)", ErrConfig, c.CID, MinGuestCID, uint64(MaxGuestCID))
	}
	if c.UDSPath == "" {
		return fmt.Errorf("%w: uds path is empty", ErrConfig)
	}
	if len(c.UDSPath) > maxPathLen {
		return fmt.Errorf("%w: uds path %q is longer than %d bytes", ErrConfig, c.UDSPath, maxPathLen)
	}
	if strings.IndexByte(c.UDSPath, 0) >= 0 {
		return fmt.Errorf("%w: uds path contains a NUL byte", ErrConfig)
	}
	return nil
}

// ParseConfig parses a command-line specification "cid=N,uds=PATH" (the
// keys in any order, both required).
func ParseConfig(s string) (Config, error) {
	var c Config
	var haveCID, haveUDS bool
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return Config{}, fmt.Errorf("%w: expected key=value, got %q", ErrConfig, kv)
		}
		switch k {
		case "cid", "guest_cid":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return Config{}, fmt.Errorf("%w: cid=%s: want a decimal number", ErrConfig, v)
			}
			c.CID, haveCID = n, true
		case "uds", "uds_path", "path":
			c.UDSPath, haveUDS = v, true
		default:
			return Config{}, fmt.Errorf("%w: unknown option %q (want cid or uds)", ErrConfig, k)
		}
	}
	if !haveCID {
		return Config{}, fmt.Errorf("%w: cid=N is required", ErrConfig)
	}
	if !haveUDS {
		return Config{}, fmt.Errorf("%w: uds=PATH is required", ErrConfig)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
