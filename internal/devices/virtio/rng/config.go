package rng

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrConfig reports an invalid rng specification.
var ErrConfig = errors.New("rng: invalid configuration")

// Config configures the entropy device.
type Config struct {
	// Rate limits the bytes per second handed to the guest; 0 means
	// unlimited.
	Rate uint64
	// Burst is the token bucket's capacity in bytes; 0 means one second
	// of Rate.
	Burst uint64
	// Source supplies the bytes; nil means crypto/rand.
	Source io.Reader `json:"-"`
}

// ParseConfig parses a command-line specification: "on" (or "true", or
// empty) for an unlimited device, "off" (or "false") for none (nil), or
// "rate=SIZE[/s][,burst=SIZE]" where SIZE is bytes with an optional K, M
// or G suffix (binary multiples).
func ParseConfig(s string) (*Config, error) {
	switch strings.TrimSpace(s) {
	case "", "on", "true", "yes":
		return &Config{}, nil
	case "off", "false", "no":
		return nil, nil
	}
	c := &Config{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%w: expected key=value, got %q", ErrConfig, kv)
		}
		n, err := parseBytes(strings.TrimSuffix(v, "/s"))
		if err != nil {
			return nil, fmt.Errorf("%w: %s=%s: %w", ErrConfig, k, v, err)
		}
		switch k {
		case "rate":
			c.Rate = n
		case "burst":
			c.Burst = n
		default:
			return nil, fmt.Errorf("%w: unknown option %q (want rate or burst)", ErrConfig, k)
		}
	}
	if c.Burst != 0 && c.Rate == 0 {
		return nil, fmt.Errorf("%w: burst without rate", ErrConfig)
	}
	return c, nil
}

var errSize = errors.New("want a positive number of bytes with an optional K, M or G suffix")

func parseBytes(s string) (uint64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "B"), "i")
	if t == "" {
		return 0, errSize
	}
	mult := uint64(1)
	switch t[len(t)-1] {
	case 'k', 'K':
		mult, t = 1<<10, t[:len(t)-1]
	case 'm', 'M':
		mult, t = 1<<20, t[:len(t)-1]
	case 'g', 'G':
		mult, t = 1<<30, t[:len(t)-1]
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || n == 0 || n > (1<<62)/mult {
		return 0, errSize
	}
	return n * mult, nil
}
