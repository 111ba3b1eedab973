package vmm

import "github.com/vireo-vmm/vireo/internal/devices/virtio/rng"

// RNGConfig configures virtio-rng.
type RNGConfig = rng.Config

func (m *Machine) setupRNG() error {
	if m.cfg.RNG == nil {
		return nil
	}
	return m.addVirtioMMIO(rng.New(*m.cfg.RNG))
}
