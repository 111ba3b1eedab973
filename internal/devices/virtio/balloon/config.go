package balloon

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrConfig reports an invalid balloon specification.
var ErrConfig = errors.New("balloon: invalid configuration")

// MaxStatsInterval bounds the statistics polling interval (Firecracker's
// stats_polling_interval_s is a 16-bit number of seconds).
const MaxStatsInterval = 65535 * time.Second

// Config configures the balloon device.
type Config struct {
	// DeflateOnOOM offers VIRTIO_BALLOON_F_DEFLATE_ON_OOM: the guest may
	// take pages back from the balloon when it runs out of memory.
	DeflateOnOOM bool
	// StatsInterval is how often the guest is asked for memory
	// statistics. Zero leaves the statistics queue out.
	StatsInterval time.Duration
	// FreePageReporting offers VIRTIO_BALLOON_F_PAGE_REPORTING: the guest
	// reports free memory, which the device returns to the host.
	FreePageReporting bool
	// TargetPages is the balloon's initial target size in 4 KiB pages.
	TargetPages uint32
}

// ParseConfig parses a command-line specification: "on" (or "true", or
// empty) for a balloon with default options, "off" (or "false") for none
// (nil), or a comma-separated list of deflate-on-oom=on|off,
// stats=SECONDS and free-page-reporting=on|off.
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
		var err error
		switch k {
		case "deflate-on-oom":
			c.DeflateOnOOM, err = parseSwitch(v)
		case "free-page-reporting":
			c.FreePageReporting, err = parseSwitch(v)
		case "stats":
			c.StatsInterval, err = parseSeconds(v)
		default:
			return nil, fmt.Errorf("%w: unknown option %q (want deflate-on-oom, stats or free-page-reporting)", ErrConfig, k)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s=%s: %w", ErrConfig, k, v, err)
		}
	}
	return c, nil
}

var (
	errSwitch  = errors.New("want on or off")
	errSeconds = errors.New("want a whole number of seconds from 0 (off) to 65535")
)

func parseSwitch(v string) (bool, error) {
	switch v {
	case "on", "true", "yes":
		return true, nil
	case "off", "false", "no":
		return false, nil
	}
	return false, errSwitch
}

func parseSeconds(v string) (time.Duration, error) {
	n, err := strconv.ParseUint(strings.TrimSuffix(v, "s"), 10, 16)
	if err != nil {
		return 0, errSeconds
	}
	return time.Duration(n) * time.Second, nil
}
