package vmm

import "github.com/vireo-vmm/vireo/internal/devices/virtio/vsock"

// VsockConfig configures virtio-vsock: the guest CID and the host Unix
// socket of the Firecracker-compatible backend.
type VsockConfig = vsock.Config

// setupVsock adds the virtio-vsock device. Its host socket is bound here,
// so a bad path fails the VM's start with a clear error.
func (m *Machine) setupVsock() error {
	if m.cfg.Vsock == nil {
		return nil
	}
	dev, err := vsock.New(*m.cfg.Vsock) // its errors start with "vsock:"
	if err != nil {
		return err
	}
	if err := m.addVirtioMMIO(dev); err != nil {
		dev.Close()
		return err
	}
	return nil
}
