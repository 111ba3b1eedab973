package blk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrConfig reports an invalid disk specification.
var ErrConfig = errors.New("disk: invalid configuration")

// MaxQueues is the largest number of request queues a disk may have.
const MaxQueues = 16

// CacheMode says how guest writes reach the backing file and what FLUSH
// means.
type CacheMode string

// Cache modes.
const (
	// CacheWriteback writes through the host page cache; FLUSH calls
	// fdatasync and completes only once it succeeds.
	CacheWriteback CacheMode = "writeback"
	// CacheNone opens the file with O_DIRECT, bypassing the host page
	// cache where the file system supports it (else it falls back to
	// writeback with a warning); FLUSH still calls fdatasync, which
	// flushes the disk's own volatile cache.
	CacheNone CacheMode = "none"
	// CacheUnsafe is writeback without VIRTIO_BLK_F_FLUSH: the guest is
	// told the disk has no volatile cache and never flushes. Data written
	// is safe from a VMM crash (it is in the host page cache) but not from
	// a host crash. Firecracker's "Unsafe" cache type.
	CacheUnsafe CacheMode = "unsafe"
)

// Format is an image format.
type Format string

// Image formats.
const (
	// FormatAuto detects qcow2 by its magic and treats anything else as raw.
	FormatAuto  Format = ""
	FormatRaw   Format = "raw"
	FormatQcow2 Format = "qcow2"
)

// Config configures one virtio-blk device.
type Config struct {
	// Path is the backing file or block device.
	Path string
	// ReadOnly exposes the disk read-only (VIRTIO_BLK_F_RO) and opens the
	// file read-only; guest writes fail with VIRTIO_BLK_S_IOERR.
	ReadOnly bool
	// ID names the disk for management APIs ("disk0" when empty).
	ID string
	// Serial is returned by VIRTIO_BLK_T_GET_ID (at most 20 bytes); empty
	// means the ID.
	Serial string
	// Cache is the cache mode; empty means CacheWriteback.
	Cache CacheMode
	// Queues is the number of request queues (VIRTIO_BLK_F_MQ when more
	// than one); 0 means 1.
	Queues int
	// Format is the image format; empty means detect it.
	Format Format
}

// Validate checks the fields that need no host access.
func (c *Config) Validate() error {
	switch {
	case c.Path == "":
		return fmt.Errorf("%w: no path given", ErrConfig)
	case len(c.Serial) > idBytes:
		return fmt.Errorf("%w: serial %q is longer than %d bytes", ErrConfig, c.Serial, idBytes)
	case strings.IndexByte(c.Serial, 0) >= 0:
		return fmt.Errorf("%w: serial contains a NUL byte", ErrConfig)
	case c.Queues < 0 || c.Queues > MaxQueues:
		return fmt.Errorf("%w: queues=%d, want 1 to %d", ErrConfig, c.Queues, MaxQueues)
	}
	switch c.Cache {
	case "", CacheWriteback, CacheNone, CacheUnsafe:
	default:
		return fmt.Errorf("%w: cache=%s, want writeback, none or unsafe", ErrConfig, c.Cache)
	}
	switch c.Format {
	case FormatAuto, FormatRaw, FormatQcow2:
	default:
		return fmt.Errorf("%w: format=%s, want raw or qcow2", ErrConfig, c.Format)
	}
	return nil
}

// cache returns the effective cache mode.
func (c *Config) cache() CacheMode {
	if c.Cache == "" {
		return CacheWriteback
	}
	return c.Cache
}

// queues returns the effective number of queues.
func (c *Config) queues() int { return max(c.Queues, 1) }

// ParseConfig parses a command-line disk specification:
//
//	path=FILE[,ro=on][,id=NAME][,serial=STR][,cache=writeback|none|unsafe][,queues=N][,format=raw|qcow2]
//
// The first element may be the bare path (FILE,ro=on). Paths cannot
// contain commas.
func ParseConfig(s string) (Config, error) {
	var c Config
	if strings.TrimSpace(s) == "" {
		return c, fmt.Errorf("%w: empty disk specification", ErrConfig)
	}
	for i, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			if i == 0 {
				c.Path = kv
				continue
			}
			return c, fmt.Errorf("%w: expected key=value, got %q", ErrConfig, kv)
		}
		var err error
		switch k {
		case "path", "file":
			c.Path = v
		case "ro", "readonly":
			c.ReadOnly, err = parseBool(v)
		case "id":
			c.ID = v
		case "serial":
			c.Serial = v
		case "cache":
			c.Cache = CacheMode(v)
		case "format":
			c.Format = Format(v)
		case "queues", "num-queues":
			c.Queues, err = parseQueues(v)
		default:
			return c, fmt.Errorf("%w: unknown option %q (want path, ro, id, serial, cache, queues or format)", ErrConfig, k)
		}
		if err != nil {
			return c, fmt.Errorf("%w: %s=%s: %w", ErrConfig, k, v, err)
		}
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

var (
	errBool   = errors.New("want on or off")
	errQueues = fmt.Errorf("want a number from 1 to %d", MaxQueues)
)

func parseQueues(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxQueues {
		return 0, errQueues
	}
	return n, nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return false, errBool
}
