package fcapi

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/blk"
	vnet "github.com/vireo-vmm/vireo/internal/devices/virtio/net"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// ErrNoDevice reports a configured device kind that Vireo cannot build yet.
var ErrNoDevice = errors.New("this Vireo build has no such device")

// attachDevices is where configured devices join the VM: the one place
// the virtio device work plugs into the Firecracker API.
//
// Until a device kind exists, configuring it fails InstanceStart: a guest
// must not boot without the root disk, network or vsock it was promised.
//
// Each kind has its attach function: drives (virtio-blk), network
// interfaces, vsock and the balloon.
func attachDevices(cfg *vmm.Config, r *resources) error {
	for _, attach := range []func(*vmm.Config, *resources) error{
		attachDrives,
		attachNets,
		attachVsock,
		attachBalloon,
	} {
		if err := attach(cfg, r); err != nil {
			return err
		}
	}
	return nil
}

// attachDrives adds a virtio-blk disk per PUT /drives, the root device
// first (vda), then the others in the order they were configured.
// path_on_host is the image, read as raw (as Firecracker does: a guest
// that writes a qcow2 header into its disk does not change how the next
// boot reads it); is_read_only opens it read-only; cache_type Unsafe is
// the writeback cache without flush support (the guest never flushes),
// Writeback the writeback cache whose flushes reach the disk
// (fdatasync); drive_id names the disk and is its serial. io_engine needs
// no translation: Vireo's one engine serves both. Vireo has no disk rate
// limiters: a drive with an enabled rate_limiter fails InstanceStart
// rather than run unlimited. Like Firecracker, a root device puts
// "root=PARTUUID=<partuuid>" (with a partuuid) or "root=/dev/vda", then
// "ro" or "rw", on the kernel command line.
func attachDrives(cfg *vmm.Config, r *resources) error {
	for _, d := range r.drives {
		if rateLimited(d.RateLimiter) {
			return fmt.Errorf("drive %q: virtio-blk: rate limiters are not supported", d.DriveID)
		}
		c := blk.Config{
			Path:     d.PathOnHost,
			ReadOnly: d.IsReadOnly != nil && *d.IsReadOnly,
			ID:       d.DriveID,
			Serial:   d.DriveID[:min(len(d.DriveID), 20)],
			Cache:    blk.CacheWriteback,
			Format:   blk.FormatRaw,
		}
		if d.CacheType == nil || *d.CacheType == "Unsafe" {
			c.Cache = blk.CacheUnsafe
		}
		if err := c.Validate(); err != nil {
			return fmt.Errorf("drive %q: %w", d.DriveID, err)
		}
		cfg.Disks = append(cfg.Disks, vmm.DiskConfig{Config: c})
	}
	if len(r.drives) == 0 || !r.drives[0].IsRootDevice {
		return nil
	}
	root := r.drives[0]
	arg := "root=/dev/vda"
	if root.Partuuid != nil && *root.Partuuid != "" {
		arg = "root=PARTUUID=" + *root.Partuuid
	}
	mode := "rw"
	if root.IsReadOnly != nil && *root.IsReadOnly {
		mode = "ro"
	}
	cfg.Cmdline = strings.TrimSpace(cfg.Cmdline + " " + arg + " " + mode)
	return nil
}

// attachNets adds a virtio-net device per PUT /network-interfaces, in the
// order the interfaces were configured: host_dev_name is the host TAP
// (Vireo creates it when it does not exist and removes it when the VM
// ends), guest_mac the guest's address (without one the guest gets a
// stable address derived from the TAP name), iface_id names the device.
// Vireo has no network rate limiters: an interface with an enabled
// rx_rate_limiter or tx_rate_limiter fails InstanceStart rather than run
// unlimited.
func attachNets(cfg *vmm.Config, r *resources) error {
	for _, n := range r.nets {
		if rateLimited(n.RxRateLimiter) || rateLimited(n.TxRateLimiter) {
			return fmt.Errorf("network interface %q: virtio-net: rate limiters are not supported", n.IfaceID)
		}
		c := vnet.Config{ID: n.IfaceID, Tap: n.HostDevName}
		if n.GuestMAC != nil {
			mac, err := vnet.ParseMAC(*n.GuestMAC)
			if err != nil {
				return fmt.Errorf("network interface %q: %w", n.IfaceID, err)
			}
			c.MAC = mac
		}
		c, err := c.Normalized()
		if err != nil {
			return fmt.Errorf("network interface %q: %w", n.IfaceID, err)
		}
		cfg.Nets = append(cfg.Nets, vmm.NetConfig{Config: c})
	}
	return nil
}

// rateLimited reports whether a Firecracker rate limiter limits anything:
// a token bucket with a zero size or refill time is disabled.
func rateLimited(l *rateLimiter) bool {
	on := func(b *tokenBucket) bool { return b != nil && b.Size > 0 && b.RefillTime > 0 }
	return l != nil && (on(l.Bandwidth) || on(l.Ops))
}

// attachVsock adds the virtio-vsock device of PUT /vsock: guest_cid and
// uds_path mean what they mean in Firecracker (host programs connect to
// uds_path and send "CONNECT <port>\n"; guest connections to host port P
// go to uds_path_P). Vireo binds the socket at InstanceStart.
func attachVsock(cfg *vmm.Config, r *resources) error {
	if r.vsock == nil {
		return nil
	}
	cfg.Vsock = &vmm.VsockConfig{CID: uint64(r.vsock.GuestCID), UDSPath: r.vsock.UDSPath}
	if err := cfg.Vsock.Validate(); err != nil {
		return fmt.Errorf("vsock: %w", err)
	}
	return nil
}

// attachBalloon adds the virtio-balloon device: amount_mib is its size at
// boot, stats_polling_interval_s (0: off) its statistics interval.
func attachBalloon(cfg *vmm.Config, r *resources) error {
	b := r.balloon
	if b == nil {
		return nil
	}
	cfg.Balloon = &vmm.BalloonConfig{
		DeflateOnOOM:  b.DeflateOnOOM,
		StatsInterval: time.Duration(b.StatsPollingIntervalS) * time.Second,
		TargetPages:   uint32(min(uint64(b.AmountMib)<<(20-12), 1<<32-1)),
	}
	return nil
}
