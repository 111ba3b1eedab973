package fcapi

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// resources is what preboot requests configure: Firecracker's VmResources
// as plain data. Devices Vireo cannot build yet are validated and kept
// here for the code that will build them (see devices.go).
type resources struct {
	machine machineConfig
	boot    *bootSource
	drives  []drive // the root device, if any, first
	nets    []networkInterface
	vsock   *vsockConfig
	balloon *balloonConfig
	logger  *loggerConfig
	metrics *metricsConfig
}

func newResources() resources {
	return resources{machine: machineConfig{VCPUCount: defaultVCPUs, MemSizeMib: defaultMemMiB, HugePages: "None"}}
}

// maxMemMiB keeps mem_size_mib << 20 within 64 bits.
const maxMemMiB = 1 << 43

// updateMachine applies a PUT or PATCH /machine-config. The result is
// checked against Vireo's own limits now, so a bad value fails the
// request rather than InstanceStart.
func (r *resources) updateMachine(u machineConfigPatch) *fault {
	m := r.machine
	if u.VCPUCount != nil {
		m.VCPUCount = *u.VCPUCount
	}
	if u.MemSizeMib != nil {
		m.MemSizeMib = *u.MemSizeMib
	}
	if u.SMT != nil {
		m.SMT = *u.SMT
	}
	if u.TrackDirtyPages != nil {
		m.TrackDirtyPages = *u.TrackDirtyPages
	}
	if u.CPUTemplate != nil {
		m.CPUTemplate = *u.CPUTemplate
		if m.CPUTemplate == "None" {
			m.CPUTemplate = ""
		}
	}
	if u.HugePages != nil {
		if _, ok := hugePagesModes[*u.HugePages]; !ok {
			return bodyError(unknownVariant(*u.HugePages, "None", "Transparent", "2M"))
		}
		m.HugePages = *u.HugePages
	}
	if m.VCPUCount == 0 || (m.SMT && m.VCPUCount > 1 && m.VCPUCount%2 == 1) {
		return badRequest("Machine config error: The number of vCPUs must be greater than 0 and must be 1 or an even number if SMT is enabled.")
	}
	if m.MemSizeMib == 0 || m.MemSizeMib > maxMemMiB {
		return badRequest("Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size.")
	}
	if r.balloon != nil && uint64(r.balloon.AmountMib) > m.MemSizeMib {
		return badRequest("Machine config error: The memory size (MiB) is smaller than the previously set balloon device target size.")
	}
	probe := machineVMMConfig(m)
	probe.Kernel = "(checked at InstanceStart)"
	if err := probe.Validate(); err != nil {
		return badRequest("Machine config error: %s", err)
	}
	r.machine = m
	return nil
}

// hugePagesModes maps Firecracker's huge_pages values to vmm.Config's.
var hugePagesModes = map[string]string{"None": "", "Transparent": "thp", "2M": "hugetlbfs"}

// machineVMMConfig translates the machine part of the configuration.
func machineVMMConfig(m machineConfig) vmm.Config {
	return vmm.Config{
		CPUs:        int(m.VCPUCount),
		MemoryBytes: m.MemSizeMib << 20,
		HugePages:   hugePagesModes[m.HugePages],
		CPUTemplate: m.CPUTemplate,
		// Diff snapshots (snapshot.go) need the dirty pages.
		TrackDirtyPages: m.TrackDirtyPages,
	}
}

// setBootSource applies PUT /boot-source: the files must be readable now.
func (r *resources) setBootSource(b bootSource) *fault {
	if err := checkOpen(b.KernelImagePath, os.O_RDONLY, false); err != nil {
		return badRequest("Boot source error: The kernel file cannot be opened: %s", err)
	}
	if b.InitrdPath != nil {
		if err := checkOpen(*b.InitrdPath, os.O_RDONLY, false); err != nil {
			return badRequest("Boot source error: The initrd file cannot be opened due to invalid path or invalid permissions. %s", err)
		}
	}
	if b.BootArgs != nil {
		if err := checkCmdline(*b.BootArgs); err != nil {
			return badRequest("Boot source error: The kernel command line is invalid: %s", err)
		}
	}
	r.boot = &b
	return nil
}

func checkCmdline(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("it contains a NUL byte")
	}
	if len(s) >= x86.CmdlineMax {
		return fmt.Errorf("it is %d bytes long; the limit is %d", len(s), x86.CmdlineMax-1)
	}
	return nil
}

// putDrive applies PUT /drives/{id}: a new drive or a replacement.
func (r *resources) putDrive(d drive) *fault {
	if d.CacheType != nil && *d.CacheType != "Unsafe" && *d.CacheType != "Writeback" {
		return bodyError(unknownVariant(*d.CacheType, "Unsafe", "Writeback"))
	}
	if d.IOEngine != nil && *d.IOEngine != "Sync" && *d.IOEngine != "Async" {
		return bodyError(unknownVariant(*d.IOEngine, "Sync", "Async"))
	}
	idx := slices.IndexFunc(r.drives, func(o drive) bool { return o.DriveID == d.DriveID })
	if d.IsRootDevice && len(r.drives) > 0 && r.drives[0].IsRootDevice && idx != 0 {
		return badRequest("Drive config error: %s", msgRootExists)
	}
	flag := os.O_RDWR
	if d.IsReadOnly != nil && *d.IsReadOnly {
		flag = os.O_RDONLY
	}
	if err := checkOpen(d.PathOnHost, flag, true); err != nil {
		return badRequest("Drive config error: Unable to create the block device: %s", err)
	}
	// Store the normalized form, as GET /vm/config reports it.
	ro := d.IsReadOnly != nil && *d.IsReadOnly
	d.IsReadOnly = &ro
	if d.CacheType == nil {
		d.CacheType = ptr("Unsafe")
	}
	if d.IOEngine == nil {
		d.IOEngine = ptr("Sync")
	}
	if idx >= 0 {
		r.drives = slices.Delete(r.drives, idx, idx+1)
	}
	if d.IsRootDevice {
		r.drives = slices.Insert(r.drives, 0, d)
	} else {
		r.drives = append(r.drives, d)
	}
	return nil
}

// maxIfName is IFNAMSIZ less the terminating NUL.
const maxIfName = 15

// putNetwork applies PUT /network-interfaces/{id}.
func (r *resources) putNetwork(n networkInterface) *fault {
	if n.HostDevName == "" || len(n.HostDevName) > maxIfName || strings.ContainsAny(n.HostDevName, "/ \x00") {
		return badRequest("Network config error: Cannot open/create the tap device: invalid interface name %q", sanitize(n.HostDevName))
	}
	if n.GuestMAC != nil {
		mac, err := net.ParseMAC(*n.GuestMAC)
		if err != nil || len(mac) != 6 || len(*n.GuestMAC) != 17 {
			return bodyError(fmt.Errorf("invalid MAC address `%s`", sanitize(*n.GuestMAC)))
		}
	}
	for _, o := range r.nets {
		if o.IfaceID == n.IfaceID {
			continue
		}
		if n.GuestMAC != nil && o.GuestMAC != nil && strings.EqualFold(*o.GuestMAC, *n.GuestMAC) {
			return badRequest("Network config error: The MAC address is already in use: %s", *n.GuestMAC)
		}
		if o.HostDevName == n.HostDevName {
			return badRequest("Network config error: Cannot open/create the tap device: %s is already used by interface %s", n.HostDevName, o.IfaceID)
		}
	}
	if i := slices.IndexFunc(r.nets, func(o networkInterface) bool { return o.IfaceID == n.IfaceID }); i >= 0 {
		r.nets[i] = n
	} else {
		r.nets = append(r.nets, n)
	}
	return nil
}

// minGuestCID is the first CID a guest may use: 0-2 are reserved for the
// hypervisor, local communication and the host.
const minGuestCID = 3

// setVsock applies PUT /vsock.
func (r *resources) setVsock(v vsockConfig) *fault {
	if v.GuestCID < minGuestCID {
		return badRequest("Vsock config error: Cannot create vsock device: guest CID %d is reserved; use %d or more", v.GuestCID, minGuestCID)
	}
	if v.UDSPath == "" {
		return badRequest("Vsock config error: Cannot create backend for vsock device: uds_path is empty")
	}
	if st, err := os.Stat(filepath.Dir(v.UDSPath)); err != nil || !st.IsDir() {
		return badRequest("Vsock config error: Cannot create backend for vsock device: directory of %s does not exist", v.UDSPath)
	}
	v.VsockID = nil // deprecated in Firecracker and not reported back
	r.vsock = &v
	return nil
}

// setBalloon applies PUT /balloon.
func (r *resources) setBalloon(b balloonPut) *fault {
	if uint64(b.AmountMib) > r.machine.MemSizeMib {
		return badRequest("Balloon config error: %s", msgBalloonTooLarge)
	}
	c := balloonConfig{AmountMib: b.AmountMib, DeflateOnOOM: b.DeflateOnOOM}
	if b.StatsPollingIntervalS != nil {
		c.StatsPollingIntervalS = *b.StatsPollingIntervalS
	}
	r.balloon = &c
	return nil
}

// full is the configuration as GET /vm/config reports it.
func (r *resources) full() fullConfig {
	fc := fullConfig{
		Balloon:           r.balloon,
		Drives:            slices.Clone(r.drives),
		MachineConfig:     r.machine,
		Logger:            r.logger,
		Metrics:           r.metrics,
		NetworkInterfaces: slices.Clone(r.nets),
		Vsock:             r.vsock,
	}
	if fc.Drives == nil {
		fc.Drives = []drive{}
	}
	if fc.NetworkInterfaces == nil {
		fc.NetworkInterfaces = []networkInterface{}
	}
	if r.boot != nil {
		fc.BootSource = *r.boot
	}
	return fc
}

// vmmConfig translates the configuration for the VMM. A guest reboot ends
// the VM, as it ends a Firecracker process.
func (r *resources) vmmConfig(defaultCmdline string) (vmm.Config, *fault) {
	if r.boot == nil {
		return vmm.Config{}, badRequest("Start microvm error: %s", msgMissingKernel)
	}
	cfg := machineVMMConfig(r.machine)
	cfg.Kernel = r.boot.KernelImagePath
	cfg.Cmdline = defaultCmdline
	if r.boot.InitrdPath != nil {
		cfg.Initrd = *r.boot.InitrdPath
	}
	if r.boot.BootArgs != nil {
		cfg.Cmdline = *r.boot.BootArgs
	}
	cfg.NoReboot = true
	if err := attachDevices(&cfg, r); err != nil {
		return vmm.Config{}, badRequest("Start microvm error: %s", err)
	}
	return cfg, nil
}

// checkOpen reports whether path, a regular file (or, with blockOK, a
// block device), can be opened with flag. The type is checked before the
// open, so a request cannot make Vireo open a FIFO or a character device
// (opening some devices has side effects), and again on the open file.
// The message is short: the path and the reason, without Go's prefixes.
func checkOpen(path string, flag int, blockOK bool) error {
	st, err := os.Stat(path)
	if err != nil {
		return openError(path, err)
	}
	if err := checkFileType(path, st.Mode(), blockOK); err != nil {
		return err
	}
	f, err := os.OpenFile(path, flag|syscall.O_NONBLOCK, 0)
	if err != nil {
		return openError(path, err)
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return openError(path, err)
	}
	return checkFileType(path, st.Mode(), blockOK)
}

func checkFileType(path string, mode fs.FileMode, blockOK bool) error {
	switch {
	case mode.IsDir():
		return fmt.Errorf("%s is a directory", path)
	case mode.IsRegular():
		return nil
	case blockOK && mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice == 0:
		return nil
	case blockOK:
		return fmt.Errorf("%s is neither a regular file nor a block device", path)
	}
	return fmt.Errorf("%s is not a regular file", path)
}

func openError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %v", path, pe.Err)
	}
	return err
}

func ptr[T any](v T) *T { return &v }
