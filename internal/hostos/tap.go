package hostos

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Offload flags for Tap.SetOffload (TUN_F_* in <linux/if_tun.h>): the
// packet shapes the host kernel may hand to the TAP's reader, described
// by the virtio-net header in front of each packet.
const (
	TapOffloadCSUM   = 0x01 // TUN_F_CSUM: partial checksums
	TapOffloadTSO4   = 0x02 // TUN_F_TSO4: TCP segmentation over IPv4
	TapOffloadTSO6   = 0x04 // TUN_F_TSO6: TCP segmentation over IPv6
	TapOffloadTSOECN = 0x08 // TUN_F_TSO_ECN: TSO with the ECN bit
	TapOffloadUFO    = 0x10 // TUN_F_UFO: UDP fragmentation
)

// MaxTapQueues bounds the queues of a multi-queue TAP (the kernel's limit
// is 256; a VMM needs one per queue pair).
const MaxTapQueues = 64

// Errors of TAP devices.
var (
	ErrTapName   = errors.New("hostos: invalid TAP interface name")
	ErrTapQueues = errors.New("hostos: invalid TAP queue count")
	ErrTapOpen   = errors.New("hostos: cannot open the TAP device")
	ErrTapClosed = errors.New("hostos: TAP device is closed")
)

// tunDevice is the TUN/TAP clone device.
const tunDevice = "/dev/net/tun"

// Tap is a host TAP interface opened with a virtio-net header in front of
// every packet (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR), one non-blocking file
// descriptor per queue (IFF_MULTI_QUEUE when there are several).
//
// A TAP that did not exist is created by the open and is not persistent:
// the kernel removes it when the last descriptor is closed. A TAP that
// existed (made with `ip tuntap add`) is only attached to and survives
// Close. Configuring the host side (addresses, link state, bridges) is
// left to the user.
type Tap struct {
	name    string
	created bool

	mu      sync.Mutex // guards fds (Close) and enabled
	fds     []int
	enabled []bool
}

// OpenTap opens (creating it if needed) the TAP interface name with the
// given number of queues. A name containing "%d" lets the kernel pick a
// free one (Name reports it).
func OpenTap(name string, queues int) (*Tap, error) {
	if err := checkIfName(name); err != nil {
		return nil, err
	}
	if queues < 1 || queues > MaxTapQueues {
		return nil, fmt.Errorf("%w: %d (want 1 to %d)", ErrTapQueues, queues, MaxTapQueues)
	}
	existed := !strings.Contains(name, "%") && interfaceExists(name)
	t := &Tap{name: name, created: !existed}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if queues > 1 {
		flags |= unix.IFF_MULTI_QUEUE
	}
	for i := range queues {
		fd, actual, err := openTapQueue(t.name, flags)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("%w %s (queue %d of %d): %s", ErrTapOpen, name, i, queues, explainTapError(err, existed, queues))
		}
		t.name = actual // the kernel's choice when name was a pattern
		t.fds = append(t.fds, fd)
		t.enabled = append(t.enabled, true)
	}
	if t.created {
		// A TAP made by TUNSETIFF is not persistent; say so explicitly
		// so that closing the descriptors always removes it.
		if err := unix.IoctlSetInt(t.fds[0], unix.TUNSETPERSIST, 0); err != nil {
			t.Close()
			return nil, fmt.Errorf("%w %s: clearing persistence: %w", ErrTapOpen, name, err)
		}
	}
	return t, nil
}

// checkIfName validates an interface name (IFNAMSIZ is 16 with the NUL).
func checkIfName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrTapName)
	case len(name) > unix.IFNAMSIZ-1:
		return fmt.Errorf("%w: %q is longer than %d bytes", ErrTapName, name, unix.IFNAMSIZ-1)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q", ErrTapName, name)
	case strings.ContainsAny(name, "/: \t\n\x00"):
		return fmt.Errorf("%w: %q contains '/', ':', a space or a control character", ErrTapName, name)
	}
	return nil
}

// openTapQueue opens one queue of the TAP and returns its descriptor and
// the interface's name.
func openTapQueue(name string, flags uint16) (int, string, error) {
	fd, err := unix.Open(tunDevice, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("open %s: %w", tunDevice, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, "", err
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, "", fmt.Errorf("TUNSETIFF: %w", err)
	}
	return fd, ifr.Name(), nil
}

// explainTapError turns the usual TUNSETIFF failures into advice.
func explainTapError(err error, existed bool, queues int) string {
	switch {
	case errors.Is(err, unix.EBUSY):
		return fmt.Sprintf("%v: another process has it open (a TAP without multi_queue takes one user)", err)
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return fmt.Sprintf("%v: creating a TAP needs CAP_NET_ADMIN; a persistent TAP must belong to this user (ip tuntap add ... user $USER)", err)
	case errors.Is(err, unix.EINVAL) && existed && queues > 1:
		return fmt.Sprintf("%v: the existing TAP was not created with multi_queue", err)
	case errors.Is(err, unix.EINVAL) && existed:
		return fmt.Sprintf("%v: the existing interface is not a TAP or was created with multi_queue", err)
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV):
		return fmt.Sprintf("%v: the host kernel has no TUN/TAP support (modprobe tun)", err)
	}
	return err.Error()
}

// interfaceExists reports whether the current network namespace has an
// interface called name.
func interfaceExists(name string) bool {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return false
	}
	return unix.IoctlIfreq(s, unix.SIOCGIFINDEX, ifr) == nil
}

// Name is the interface name.
func (t *Tap) Name() string { return t.name }

// Created reports whether OpenTap created the interface (and Close will
// therefore remove it).
func (t *Tap) Created() bool { return t.created }

// Queues is the number of queues.
func (t *Tap) Queues() int { return len(t.enabled) }

// FD returns queue i's non-blocking descriptor (-1 once closed or for an
// i out of range), for poll, read and write.
func (t *Tap) FD(i int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i < 0 || i >= len(t.fds) {
		return -1
	}
	return t.fds[i]
}

// SetVnetHdrSize sets the length of the virtio-net header in front of
// each packet (TUNSETVNETHDRSZ; 10, or 12 with num_buffers).
func (t *Tap) SetVnetHdrSize(n int) error {
	return t.ioctl("TUNSETVNETHDRSZ", func(fd int) error {
		return unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, n)
	})
}

// SetOffload sets the offloads (TapOffload* bits) the host may use in
// packets it hands to the TAP's reader (TUNSETOFFLOAD).
func (t *Tap) SetOffload(flags uint) error {
	return t.ioctl("TUNSETOFFLOAD", func(fd int) error {
		return unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, int(flags))
	})
}

// ioctl runs an interface-wide request on the first queue's descriptor.
func (t *Tap) ioctl(what string, f func(fd int) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.fds) == 0 {
		return ErrTapClosed
	}
	if err := f(t.fds[0]); err != nil {
		return fmt.Errorf("hostos: TAP %s: %s: %w", t.name, what, err)
	}
	return nil
}

// SetQueueEnabled attaches (on) or detaches queue i of a multi-queue TAP
// (TUNSETQUEUE): the kernel spreads received packets over attached queues
// only. A detached queue's descriptor must not be read or polled. It is a
// no-op when the queue already is in that state.
func (t *Tap) SetQueueEnabled(i int, on bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.fds) == 0 {
		return ErrTapClosed
	}
	if i < 0 || i >= len(t.fds) {
		return fmt.Errorf("%w: queue %d of %d", ErrTapQueues, i, len(t.fds))
	}
	if t.enabled[i] == on {
		return nil
	}
	ifr, err := unix.NewIfreq(t.name)
	if err != nil {
		return err
	}
	flags := uint16(unix.IFF_DETACH_QUEUE)
	if on {
		flags = unix.IFF_ATTACH_QUEUE
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(t.fds[i], unix.TUNSETQUEUE, ifr); err != nil {
		return fmt.Errorf("hostos: TAP %s: TUNSETQUEUE queue %d (attach %v): %w", t.name, i, on, err)
	}
	t.enabled[i] = on
	return nil
}

// QueueEnabled reports whether queue i is attached.
func (t *Tap) QueueEnabled(i int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return i >= 0 && i < len(t.enabled) && t.enabled[i] && len(t.fds) > 0
}

// Close closes every queue. A TAP that OpenTap created disappears with
// its last descriptor; one that existed before stays. It is safe to call
// twice.
func (t *Tap) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for _, fd := range t.fds {
		if err := unix.Close(fd); err != nil {
			errs = append(errs, err)
		}
	}
	t.fds = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("hostos: closing TAP %s: %w", t.name, err)
	}
	return nil
}
