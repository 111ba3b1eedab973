package console

import "github.com/vireo-vmm/vireo/internal/metrics"

// Metrics returns the bytes the device moved each way, over all its
// ports. Its ID is "console" for the console's device and "channels" for
// the channels' one.
func (d *Device) Metrics() metrics.Console {
	id := "channels"
	if d.HasConsole() {
		id = "console"
	}
	return metrics.Console{ID: id, RxBytes: d.rxBytes.Load(), TxBytes: d.txBytes.Load()}
}
