package vmm

import (
	"errors"

	"github.com/vireo-vmm/vireo/internal/devices/legacy"
)

// Powerdown asks the guest to shut down. Without ACPI the request is
// Ctrl+Alt+Del on the i8042 keyboard, as Firecracker's SendCtrlAltDel does;
// what the guest makes of it is up to the guest. It emits EventPowerdown.
func (c *Controller) Powerdown() error { return c.do(actPowerdown) }

// powerdown runs on the controller goroutine. A keyboard buffer that is
// still full of unread keys means an earlier request is still pending in
// the guest: that is not an error, as a second press of a power button
// that the guest has not looked at yet is not one.
func (c *Controller) powerdown(m *Machine) error {
	if err := m.i8042.SendCtrlAltDel(); err != nil && !errors.Is(err, legacy.ErrBufferFull) {
		return err
	}
	c.emit(EventPowerdown, false, "")
	return nil
}
