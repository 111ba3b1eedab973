package vmm

import "github.com/vireo-vmm/vireo/internal/devices/virtio/balloon"

// BalloonConfig configures virtio-balloon; its TargetPages is the
// balloon's size at boot in 4 KiB pages.
type BalloonConfig = balloon.Config

// setupBalloon adds the balloon device when one is configured.
func (m *Machine) setupBalloon() error {
	if m.cfg.Balloon == nil {
		return nil
	}
	cfg := *m.cfg.Balloon
	cfg.TargetPages = min(cfg.TargetPages, m.memoryPages())
	return m.addVirtioMMIO(balloon.New(cfg))
}

// balloon returns the machine's balloon device, or nil. It runs on the
// controller goroutine, which also closes the machine.
func (m *Machine) balloon() *balloon.Device {
	for _, t := range m.virtio.transports {
		if b, ok := t.Device().(*balloon.Device); ok {
			return b
		}
	}
	return nil
}

// memoryPages is guest RAM in balloon pages.
func (m *Machine) memoryPages() uint32 {
	return uint32(min(m.cfg.MemoryBytes/balloon.PageSize, 1<<32-1))
}
