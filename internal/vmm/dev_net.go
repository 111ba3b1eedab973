package vmm

// NetConfig configures one device of this kind (not yet available).
type NetConfig struct{}

// setupNet adds the configured devices of this kind.
func (m *Machine) setupNet() error { return nil }
