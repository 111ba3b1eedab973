package vmm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/mmio"
)

// virtioGSIs are the interrupt lines of virtio-mmio devices, in the order
// devices are added: the ISA lines no platform device uses (1 i8042
// keyboard, 4 COM1, 8 RTC, 12 i8042 mouse, 14 and 15 by convention IDE
// stay free), then the I/O APIC's upper pins. The MP table routes every
// pin 1:1, edge-triggered, which suits irqfd.
var virtioGSIs = []uint32{5, 6, 7, 9, 10, 11, 13, 16, 17, 18, 19, 20, 21, 22, 23}

// ErrTooManyVirtio reports more virtio-mmio devices than interrupt lines.
var ErrTooManyVirtio = errors.New("too many virtio-mmio devices")

// virtioDevices are a machine's virtio-mmio transports and the kernel
// parameters that announce them to the guest.
type virtioDevices struct {
	transports []*mmio.Transport
	params     []string
	meters     meters // the devices that keep counters (metrics.go)
}

// setupVirtio creates the configured virtio devices. It runs before
// loadGuest, which writes the command line that lists them. The order is
// fixed so guest device names are stable: disks (vda, vdb, ...) first,
// then network interfaces, the console and channels, vsock, the balloon
// and the entropy source. Each kind has its own file (dev_*.go).
func (m *Machine) setupVirtio() error {
	for _, setup := range []func() error{
		m.setupBlock,
		m.setupNet,
		m.setupConsole,
		m.setupVsock,
		m.setupBalloon,
		m.setupRNG,
	} {
		if err := setup(); err != nil {
			return err
		}
	}
	m.virtio.meters = m.collectMeters()
	return nil
}

// addVirtioMMIO puts dev behind a virtio-mmio transport in the next
// window (x86.VirtioMMIOBase + n*x86.VirtioMMIOSize) with the next free
// GSI: ioeventfds on its QueueNotify register, an irqfd on the GSI, the
// window on the MMIO bus, and a virtio_mmio.device= kernel parameter.
func (m *Machine) addVirtioMMIO(dev virtio.Device) error {
	n := len(m.virtio.transports)
	if n >= len(virtioGSIs) {
		return fmt.Errorf("%w: at most %d", ErrTooManyVirtio, len(virtioGSIs))
	}
	base := x86.VirtioMMIOBase + uint64(n)*x86.VirtioMMIOSize
	gsi := virtioGSIs[n]
	t, err := mmio.New(dev, m.mem, mmio.WithLogger(m.log))
	if err != nil {
		return fmt.Errorf("virtio-%s: %w", dev.Type(), err)
	}
	if err := t.Attach(m.vm, base, gsi); err != nil {
		t.Close()
		return fmt.Errorf("virtio-%s: %w", dev.Type(), err)
	}
	if err := m.mmio.Insert(t, base, x86.VirtioMMIOSize); err != nil {
		t.Close()
		return fmt.Errorf("virtio-%s: %w", dev.Type(), err)
	}
	m.virtio.transports = append(m.virtio.transports, t)
	m.virtio.params = append(m.virtio.params,
		fmt.Sprintf("virtio_mmio.device=%dK@%#x:%d", x86.VirtioMMIOSize>>10, base, gsi))
	m.log.Debug("virtio-mmio device", "type", dev.Type().String(), "base", fmt.Sprintf("%#x", base), "gsi", gsi)
	return nil
}

// kernelCmdline is the configured command line followed by the
// virtio-mmio device parameters.
func (m *Machine) kernelCmdline() string {
	parts := m.virtio.params
	if c := strings.TrimSpace(m.cfg.Cmdline); c != "" {
		parts = append([]string{c}, parts...)
	}
	return strings.Join(parts, " ")
}

// closeVirtio stops the virtio devices and releases their eventfds. It
// runs before the VM and guest memory are released.
func (m *Machine) closeVirtio() {
	for _, t := range m.virtio.transports {
		if err := t.Close(); err != nil {
			m.log.Warn("closing a virtio-mmio device", "err", err)
		}
	}
	m.virtio.transports = nil
}
