// Package vmm assembles a virtual machine from its configuration (the
// builder) and runs it (the controller). Boot and, later, restore share the
// one wiring path in newMachine.
package vmm

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/bus"
	"github.com/vireo-vmm/vireo/internal/devices/legacy"
	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/irq"
	"github.com/vireo-vmm/vireo/internal/kvm"
	"github.com/vireo-vmm/vireo/internal/loader"
	"github.com/vireo-vmm/vireo/internal/vcpu"
)

// Port and IRQ assignments of the PC platform devices.
const (
	com1Port    = 0x3f8
	com1IRQ     = 4
	i8042Port   = 0x60
	i8042IRQ    = 1
	rtcPort     = 0x70
	debugPort   = 0x80
	maxVCPUs    = 254 // MP table APIC IDs (the I/O APIC takes the next one)
	minMemBytes = 16 << 20
)

// Config is everything needed to build one machine.
type Config struct {
	Kernel      string
	Initrd      string
	Cmdline     string
	CPUs        int
	MemoryBytes uint64
	HugePages   string // "", "off", "thp", "hugetlbfs"
	Merge       bool
	CPUTemplate string // named CPU template; "" means the host default
	NoReboot    bool
	// Console receives the guest's serial output (nil discards it).
	Console io.Writer
	Log     *slog.Logger
	// OnMarker is called for each boot marker the guest writes to the debug port.
	OnMarker func(value byte, sinceStart time.Duration)
	// Start is the reference time for boot markers (process start).
	Start time.Time
	// Devices are the virtio devices (devices.go).
	Devices
	// RestoreDir, when set, restores the machine from a snapshot directory
	// instead of booting a kernel; the snapshot's configuration replaces
	// the machine settings above (the host-side ones stay).
	RestoreDir string
	// RestoreFiles, when set, restores instead from a snapshot written to
	// explicit state and memory files, the Firecracker API's layout
	// (snapshot_fc.go).
	RestoreFiles *SnapshotFiles
	// StartPaused leaves the first machine paused once built, its vCPUs
	// never run before a Resume (Firecracker's load without resume_vm).
	StartPaused bool
	// TrackDirtyPages records the pages written since the last snapshot,
	// so a Diff snapshot saves only those (Firecracker's track_dirty_pages).
	TrackDirtyPages bool
}

// Errors for configuration problems.
var (
	ErrConfig = errors.New("invalid configuration")
)

// Validate checks the parts of the configuration that need no host access.
func (c *Config) Validate() error {
	if c.RestoreDir != "" || c.RestoreFiles != nil {
		return nil // the snapshot holds the machine's configuration
	}
	if c.Kernel == "" {
		return fmt.Errorf("%w: no kernel given", ErrConfig)
	}
	if c.CPUs < 1 || c.CPUs > maxVCPUs {
		return fmt.Errorf("%w: %d vCPUs requested; Vireo supports 1 to %d", ErrConfig, c.CPUs, maxVCPUs)
	}
	if c.MemoryBytes < minMemBytes {
		return fmt.Errorf("%w: %d MiB of memory is too little; at least %d MiB", ErrConfig, c.MemoryBytes>>20, minMemBytes>>20)
	}
	if c.MemoryBytes%(2<<20) != 0 {
		return fmt.Errorf("%w: memory size must be a multiple of 2 MiB", ErrConfig)
	}
	if _, err := x86.TemplateByName(c.cpuTemplate()); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return nil
}

func (c *Config) cpuTemplate() string {
	if c.CPUTemplate == "" {
		return "host"
	}
	return c.CPUTemplate
}

// Machine is one built VM: KVM objects, guest memory, buses, devices and
// vCPU threads. It is rebuilt from its Config on guest reset.
type Machine struct {
	cfg    Config
	log    *slog.Logger
	sys    *kvm.System
	vm     *kvm.VM
	kstats *kvm.Stats // KVM's statistics of the VM; nil when the host has none
	mem    *guestmem.Memory
	pio    bus.Bus
	mmio   bus.Bus
	serial *legacy.Serial
	i8042  *legacy.I8042
	rtc    *legacy.RTC
	debug  *legacy.DebugPort
	vcpus  []*vcpu.VCPU
	events chan vcpu.Event
	reset  chan struct{}
	closed sync.Once
	virtio virtioDevices
	diff   *diffState // pages dirtied since the last snapshot (snapshot_fc_dirty.go)
}

// newMachine builds a machine with all vCPUs created and paused.
func newMachine(sys *kvm.System, cfg Config) (*Machine, error) {
	return buildMachine(sys, cfg, nil)
}

// buildMachine is the one wiring path for a fresh boot (from == nil) and a
// restore: the same devices at the same addresses, then either the kernel
// is loaded and the boot processor set at its entry, or every component
// is loaded from the snapshot.
func buildMachine(sys *kvm.System, cfg Config, from *restoreFrom) (_ *Machine, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	m := &Machine{
		cfg:    cfg,
		log:    log,
		sys:    sys,
		events: make(chan vcpu.Event, cfg.CPUs),
		reset:  make(chan struct{}, 1),
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if m.vm, err = sys.CreateVM(); err != nil {
		return nil, err
	}
	if m.kstats, err = m.vm.StatsFD(); err != nil {
		m.log.Debug("no KVM statistics for the VM", "err", err)
		m.kstats, err = nil, nil
	}
	if err = m.setupPlatform(); err != nil {
		return nil, err
	}
	// Guest RAM is registered before the irqchip exists: with an in-kernel
	// irqchip, KVM_SET_USER_MEMORY_REGION waits for an SRCU grace period
	// and costs milliseconds, without it tens of microseconds.
	if err = m.setupMemory(from); err != nil {
		return nil, err
	}
	if err = m.startDiffTracking(from); err != nil { // snapshot_fc_dirty.go
		return nil, err
	}
	if err = m.setupIRQChip(); err != nil {
		return nil, err
	}
	if err = m.setupVirtio(); err != nil { // before loadGuest: it adds to the command line
		return nil, err
	}
	if from != nil {
		if err = m.setupDevices(); err != nil {
			return nil, err
		}
		if err = m.restore(from.snap); err != nil {
			return nil, err
		}
		return m, nil
	}
	proto, entry, bootArg, err := m.loadGuest()
	if err != nil {
		return nil, err
	}
	if err = m.setupDevices(); err != nil {
		return nil, err
	}
	if err = m.startVCPUs(proto, entry, bootArg); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Machine) setupPlatform() error {
	for _, c := range []struct {
		cap  int
		name string
	}{
		{kvm.CapIRQChip, "in-kernel irqchip"},
		{kvm.CapUserMemory, "user memory"},
		{kvm.CapSetTSSAddr, "TSS address"},
		{kvm.CapPIT2, "in-kernel PIT"},
		{kvm.CapIRQFD, "irqfd"},
		{kvm.CapIOEventFD, "ioeventfd"},
		{kvm.CapImmediateExit, "immediate exit"},
		{kvm.CapExtCPUID, "extended CPUID"},
	} {
		if m.sys.CheckExtension(c.cap) == 0 {
			return fmt.Errorf("%w: %s (KVM_CAP %d)", kvm.ErrMissingCap, c.name, c.cap)
		}
	}
	if err := m.vm.SetTSSAddr(x86.TSSAddr); err != nil {
		return err
	}
	if m.sys.CheckExtension(kvm.CapSetIdentityMapAddr) != 0 {
		if err := m.vm.SetIdentityMapAddr(x86.IdentityMapAddr); err != nil {
			return err
		}
	}
	return nil
}

// setupIRQChip creates the in-kernel PIC, I/O APIC, local APICs and PIT.
func (m *Machine) setupIRQChip() error {
	if err := m.vm.CreateIRQChip(); err != nil {
		return err
	}
	return m.vm.CreatePIT2(kvm.PITSpeakerDummy)
}

func (m *Machine) setupMemory(from *restoreFrom) error {
	if from != nil && from.memory != nil {
		return m.adoptMemory(from) // RAM filled by a migration (migrate_target.go)
	}
	backing := guestmem.Backing{HugePages: m.cfg.HugePages, Merge: m.cfg.Merge}
	specs := x86.RAMRegions(m.cfg.MemoryBytes)
	if from != nil {
		if len(from.snap.Memory) != len(specs) {
			return fmt.Errorf("%w: %d memory regions saved, the layout has %d", ErrSnapshot, len(from.snap.Memory), len(specs))
		}
		backing.File = from.mem
		for i, r := range from.snap.Memory {
			if r.GPA != specs[i].GPA || r.Size != specs[i].Size {
				return fmt.Errorf("%w: saved memory region %#x+%#x does not match the layout", ErrSnapshot, r.GPA, r.Size)
			}
			backing.FileOffsets = append(backing.FileOffsets, r.Offset)
		}
		if backing.HugePages == "hugetlbfs" {
			backing.HugePages = "" // a file mapping cannot use hugetlbfs pages
		}
	}
	mem, err := guestmem.New(specs, backing)
	if err != nil {
		return err
	}
	m.mem = mem
	for i, r := range mem.Regions() {
		if err := m.vm.SetUserMemoryRegion(uint32(i), 0, r.GPA, r.Size, r.HostAddr()); err != nil {
			return err
		}
	}
	return nil
}

func (m *Machine) loadGuest() (loader.Protocol, uint64, uint64, error) {
	kf, err := os.Open(m.cfg.Kernel)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("kernel: %w", err)
	}
	defer kf.Close()
	st, err := kf.Stat()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("kernel: %w", err)
	}
	if st.IsDir() {
		return 0, 0, 0, fmt.Errorf("kernel: %s is a directory", m.cfg.Kernel)
	}
	k, err := loader.LoadKernel(m.mem, kf, st.Size())
	if err != nil {
		return 0, 0, 0, fmt.Errorf("kernel %s: %w", m.cfg.Kernel, err)
	}
	bi := loader.BootInfo{Cmdline: m.kernelCmdline(), E820: x86.E820(m.mem)}
	if m.cfg.Initrd != "" {
		f, err := os.Open(m.cfg.Initrd)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("initrd: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return 0, 0, 0, fmt.Errorf("initrd: %w", err)
		}
		if st.IsDir() {
			return 0, 0, 0, fmt.Errorf("initrd: %s is a directory", m.cfg.Initrd)
		}
		gpa, err := loader.LoadInitrd(m.mem, k, f, st.Size())
		if err != nil {
			return 0, 0, 0, fmt.Errorf("initrd %s: %w", m.cfg.Initrd, err)
		}
		bi.InitrdGPA, bi.InitrdSize = gpa, uint64(st.Size())
	}
	arg, err := loader.WriteBootInfo(m.mem, k, bi)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := x86.WriteMPTable(m.mem, m.cfg.CPUs); err != nil {
		return 0, 0, 0, err
	}
	return k.Protocol, k.Entry, arg, nil
}

// line returns an interrupt line that mirrors a level onto a GSI.
func (m *Machine) line(gsi uint32) irq.Line {
	return irq.LineFunc(func(high bool) error { return m.vm.IRQLine(gsi, high) })
}

func (m *Machine) setupDevices() error {
	out := m.cfg.Console
	if out == nil {
		out = io.Discard
	}
	m.serial = legacy.NewSerial(m.line(com1IRQ), out)
	m.i8042 = legacy.NewI8042(m.requestReset)
	m.i8042.SetKeyboardIRQ(m.line(i8042IRQ))
	m.rtc = legacy.NewRTC(time.Now)
	start := m.cfg.Start
	if start.IsZero() {
		start = time.Now()
	}
	onMarker := m.cfg.OnMarker
	m.debug = legacy.NewDebugPort(start, func(v byte, d time.Duration) {
		m.log.Debug("boot marker", "value", fmt.Sprintf("%#x", v), "since_start", d)
		if onMarker != nil {
			onMarker(v, d)
		}
	})
	for _, d := range []struct {
		dev        bus.Device
		base, size uint64
	}{
		{m.serial, com1Port, 8},
		{m.i8042, i8042Port, 5},
		{m.rtc, rtcPort, 2},
		{m.debug, debugPort, 1},
	} {
		if err := m.pio.Insert(d.dev, d.base, d.size); err != nil {
			return err
		}
	}
	return nil
}

// requestReset is called by devices (the i8042 reset line) on a guest reset.
func (m *Machine) requestReset() {
	select {
	case m.reset <- struct{}{}:
	default:
	}
}

// Serial returns the console UART (for host input).
func (m *Machine) Serial() *legacy.Serial { return m.serial }

// Memory returns guest RAM.
func (m *Machine) Memory() *guestmem.Memory { return m.mem }

// VCPUs returns the vCPU threads.
func (m *Machine) VCPUs() []*vcpu.VCPU { return m.vcpus }

// Pause parks every vCPU outside guest mode.
func (m *Machine) Pause() error {
	for _, v := range m.vcpus {
		if err := v.Pause(); err != nil {
			return err
		}
	}
	return nil
}

// Resume lets every vCPU run.
func (m *Machine) Resume() error {
	for _, v := range m.vcpus {
		if err := v.Resume(); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the vCPUs and releases KVM objects and memory.
func (m *Machine) Close() {
	m.closed.Do(func() {
		for _, v := range m.vcpus {
			v.Stop()
		}
		if m.serial != nil {
			m.serial.Close()
		}
		m.closeVirtio()
		if m.kstats != nil {
			m.kstats.Close()
		}
		if m.vm != nil {
			m.vm.Close()
		}
		if m.mem != nil {
			m.mem.Close()
		}
	})
}
