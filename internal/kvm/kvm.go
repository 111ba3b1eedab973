// Package kvm is Vireo's typed binding of the Linux KVM API for x86-64.
//
// ABI structs and ioctl numbers live in ztypes_amd64.go, generated once from
// <linux/kvm.h> with `go tool cgo -godefs` and committed (see gen/types.go);
// size tests pin each struct to the kernel ABI. System, VM and VCPU wrap
// their file descriptors; nothing outside this package sees a raw fd.
package kvm

//go:generate sh -c "go tool cgo -godefs gen/types.go | gofmt > ztypes_amd64.go"

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// DevicePath is the KVM device node.
const DevicePath = "/dev/kvm"

// CapGuestMemfd is KVM_CAP_GUEST_MEMFD (newer than the generation headers).
const CapGuestMemfd = 234

// Sentinel errors.
var (
	ErrNoKVM       = errors.New("kvm: /dev/kvm is not available")
	ErrAPIVersion  = errors.New("kvm: unsupported KVM API version")
	ErrMissingCap  = errors.New("kvm: required capability missing")
	ErrTooManyMSRs = errors.New("kvm: too many MSRs")
)

// System is an open /dev/kvm.
type System struct {
	f *os.File
}

// Open opens /dev/kvm and checks the API version.
func Open() (*System, error) {
	fd, err := unix.Open(DevicePath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, fmt.Errorf("%w: %s does not exist (is the kvm module loaded, or is this a VM without nested virtualization?)", ErrNoKVM, DevicePath)
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			return nil, fmt.Errorf("%w: permission denied opening %s (add yourself to the kvm group or run as root)", ErrNoKVM, DevicePath)
		}
		return nil, fmt.Errorf("%w: opening %s: %v", ErrNoKVM, DevicePath, err)
	}
	s := &System{f: os.NewFile(uintptr(fd), DevicePath)}
	v, err := s.APIVersion()
	if err != nil {
		s.Close()
		return nil, err
	}
	if v != APIVersion {
		s.Close()
		return nil, fmt.Errorf("%w: got %d, want %d", ErrAPIVersion, v, APIVersion)
	}
	return s, nil
}

// Close closes /dev/kvm. VMs created from it stay valid.
func (s *System) Close() error { return s.f.Close() }

func (s *System) fd() uintptr { return s.f.Fd() }

// APIVersion returns KVM_GET_API_VERSION.
func (s *System) APIVersion() (int, error) {
	r, err := ioctl(s.fd(), ioctlGetAPIVersion, 0)
	if err != nil {
		return 0, fmt.Errorf("kvm: KVM_GET_API_VERSION: %w", err)
	}
	return int(r), nil
}

// CheckExtension returns KVM_CHECK_EXTENSION for cap (0 when absent).
func (s *System) CheckExtension(cap int) int {
	r, err := ioctl(s.fd(), ioctlCheckExtension, uintptr(cap))
	if err != nil {
		return 0
	}
	return int(r)
}

// VCPUMmapSize returns the size of the kvm_run mapping.
func (s *System) VCPUMmapSize() (int, error) {
	r, err := ioctl(s.fd(), ioctlGetVCPUMmapSize, 0)
	if err != nil {
		return 0, fmt.Errorf("kvm: KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	return int(r), nil
}

// SupportedCPUID returns KVM_GET_SUPPORTED_CPUID.
func (s *System) SupportedCPUID() ([]CPUIDEntry2, error) {
	return s.getCPUID(ioctlGetSupportedCPUID, "KVM_GET_SUPPORTED_CPUID")
}

// EmulatedCPUID returns KVM_GET_EMULATED_CPUID.
func (s *System) EmulatedCPUID() ([]CPUIDEntry2, error) {
	return s.getCPUID(ioctlGetEmulatedCPUID, "KVM_GET_EMULATED_CPUID")
}

func (s *System) getCPUID(req uintptr, name string) ([]CPUIDEntry2, error) {
	for n := 256; n <= 4096; n *= 2 {
		entries, err := cpuidIoctl(s.fd(), req, n)
		if errors.Is(err, unix.E2BIG) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("kvm: %s: %w", name, err)
		}
		return entries, nil
	}
	return nil, fmt.Errorf("kvm: %s: table too large", name)
}

// MSRIndexList returns KVM_GET_MSR_INDEX_LIST: the MSRs a VMM should save.
func (s *System) MSRIndexList() ([]uint32, error) {
	return msrListIoctl(s.fd(), ioctlGetMSRIndexList)
}

// MSRFeatureList returns KVM_GET_MSR_FEATURE_INDEX_LIST.
func (s *System) MSRFeatureList() ([]uint32, error) {
	return msrListIoctl(s.fd(), ioctlGetMSRFeatureList)
}

// CreateVM creates a VM with the default machine type.
func (s *System) CreateVM() (*VM, error) {
	r, err := ioctl(s.fd(), ioctlCreateVM, 0)
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_CREATE_VM: %w", err)
	}
	mmapSize, err := s.VCPUMmapSize()
	if err != nil {
		unix.Close(int(r))
		return nil, err
	}
	return &VM{f: os.NewFile(r, "kvm-vm"), sys: s, runSize: mmapSize, ringPage: s.coalescedRingPage(mmapSize)}, nil
}
