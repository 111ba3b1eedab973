package fcapi

import (
	"errors"
	"fmt"

	"github.com/vireo-vmm/vireo/internal/vmm"
)

// ErrNoDevice reports a configured device kind that Vireo cannot build yet.
var ErrNoDevice = errors.New("this Vireo build has no such device")

// attachDevices is where configured devices join the VM: the one place
// the virtio device work plugs into the Firecracker API.
//
// Until a device kind exists, configuring it fails InstanceStart: a guest
// must not boot without the root disk, network or vsock it was promised.
// The balloon is the exception: a guest runs correctly without one, so the
// VM starts (the server logs a warning) and the balloon endpoints keep
// answering from the stored configuration.
//
// Hook for virtio-blk: translate r.drives here (the root device is first;
// IsReadOnly, CacheType, IOEngine and RateLimiter are normalized by
// putDrive) into the block devices of vmm.Config, and append the root
// argument to cfg.Cmdline as Firecracker does: "root=PARTUUID=<partuuid>"
// when the root drive has one, else "root=/dev/vda", then "ro" or "rw".
// virtio-net (r.nets) and vsock (r.vsock) plug in the same way.
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

// attachDrives is the virtio-blk hook (see attachDevices).
func attachDrives(cfg *vmm.Config, r *resources) error {
	if len(r.drives) > 0 {
		return fmt.Errorf("drive %q: virtio-blk: %w", r.drives[0].DriveID, ErrNoDevice)
	}
	return nil
}

// attachNets is the virtio-net hook.
func attachNets(cfg *vmm.Config, r *resources) error {
	if len(r.nets) > 0 {
		return fmt.Errorf("network interface %q: virtio-net: %w", r.nets[0].IfaceID, ErrNoDevice)
	}
	return nil
}

// attachVsock is the virtio-vsock hook.
func attachVsock(cfg *vmm.Config, r *resources) error {
	if r.vsock != nil {
		return fmt.Errorf("vsock: virtio-vsock: %w", ErrNoDevice)
	}
	return nil
}

// attachBalloon is the virtio-balloon hook: until the device exists the
// VM starts without it (see attachDevices).
func attachBalloon(cfg *vmm.Config, r *resources) error { return nil }
