package vireo

import (
	"net/http"

	"github.com/vireo-vmm/vireo/internal/metrics"
)

// Metrics is every counter of a VM at one moment: each vCPU's exits and
// each virtio device's requests, bytes and errors, the same numbers QMP's
// x-vireo-query-metrics, the Firecracker metrics file and the Prometheus
// endpoint report.
type Metrics = metrics.Snapshot

// The parts of Metrics.
type (
	VCPUMetrics    = metrics.VCPU
	ExitCounts     = metrics.Exits
	BlockMetrics   = metrics.Block
	BlockOpMetrics = metrics.BlockOp
	NetMetrics     = metrics.Net
	VsockMetrics   = metrics.Vsock
	ConsoleMetrics = metrics.Console
	RNGMetrics     = metrics.RNG
	BalloonMetrics = metrics.Balloon
)

// Metrics reads the VM's counters. It does not wait for the VM's
// controller, so it is cheap to call often; before Start it is empty.
func (vm *VM) Metrics() Metrics { return vm.ctl.Metrics() }

// MetricsHandler serves GET /metrics with the VM's counters in the
// Prometheus text format, for programs that run their own HTTP server.
func (vm *VM) MetricsHandler() http.Handler { return metrics.Handler(vm.ctl.Metrics) }
