package fcapi

import (
	"path/filepath"
	"testing"

	vmetrics "github.com/vireo-vmm/vireo/internal/metrics"
)

// TestMetricsDevices: the block, net, vsock and balloon sections carry
// Firecracker's names, per device and summed, as increases per line.
func TestMetricsDevices(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(h.dir, "metrics.json")
	h.ok("PUT", "/metrics", `{"metrics_path": "`+path+`"}`)
	h.boot()
	// Without devices the summed sections are there, at zero.
	h.ok("PUT", "/actions", `{"action_type": "FlushMetrics"}`)
	snap := vmetrics.Snapshot{
		Disks: []vmetrics.Block{
			{ID: "rootfs", Read: vmetrics.BlockOp{Ops: 10, Bytes: 40960}, Write: vmetrics.BlockOp{Ops: 2, Bytes: 1024, Failed: 1}, Flush: vmetrics.BlockOp{Ops: 1}, Invalid: 3},
			{ID: "data", Read: vmetrics.BlockOp{Ops: 1, Bytes: 512}},
		},
		Nets:    []vmetrics.Net{{ID: "eth0", RxPackets: 5, RxBytes: 500, TxPackets: 4, TxBytes: 400, TxDropped: 1}},
		Vsock:   &vmetrics.Vsock{RxPackets: 7, RxBytes: 70, TxPackets: 6, TxBytes: 60, ConnsAdded: 1},
		Balloon: &vmetrics.Balloon{Inflates: 2, Deflates: 1, StatsUpdates: 9},
	}
	h.vm.setMetrics(snap)
	h.ok("PUT", "/actions", `{"action_type": "FlushMetrics"}`)
	snap.Disks[0].Read = vmetrics.BlockOp{Ops: 15, Bytes: 61440}
	snap.Nets[0].RxBytes = 800
	h.vm.setMetrics(snap)
	h.ok("PUT", "/actions", `{"action_type": "FlushMetrics"}`)

	lines := readMetricLines(t, path)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	check := func(line map[string]any, which string, want map[string]map[string]float64) {
		t.Helper()
		for group, fields := range want {
			for name, v := range fields {
				if got := counter(t, line, group, name); got != v {
					t.Errorf("%s line: %s.%s = %v, want %v", which, group, name, got, v)
				}
			}
		}
	}
	check(lines[0], "first", map[string]map[string]float64{
		"block": {"read_bytes": 0, "write_count": 0}, "net": {"rx_bytes_count": 0},
		"vsock": {"conns_added": 0}, "balloon": {"inflate_count": 0},
	})
	check(lines[1], "second", map[string]map[string]float64{
		"block_rootfs": {"read_bytes": 40960, "write_bytes": 1024, "read_count": 10, "write_count": 2, "flush_count": 1, "invalid_reqs_count": 3, "execute_fails": 1},
		"block_data":   {"read_bytes": 512, "read_count": 1},
		"block":        {"read_bytes": 41472, "read_count": 11, "execute_fails": 1},
		"net_eth0":     {"rx_bytes_count": 500, "rx_packets_count": 5, "tx_bytes_count": 400, "tx_packets_count": 4, "tx_fails": 1, "rx_fails": 0},
		"net":          {"rx_bytes_count": 500},
		"vsock":        {"rx_bytes_count": 70, "tx_bytes_count": 60, "rx_packets_count": 7, "tx_packets_count": 6, "conns_added": 1, "conns_removed": 0},
		"balloon":      {"inflate_count": 2, "deflate_count": 1, "stats_updates_count": 9},
	})
	check(lines[2], "third", map[string]map[string]float64{
		"block_rootfs": {"read_bytes": 20480, "read_count": 5, "write_count": 0},
		"block":        {"read_bytes": 20480},
		"net_eth0":     {"rx_bytes_count": 300, "tx_bytes_count": 0},
		"vsock":        {"rx_bytes_count": 0},
		"balloon":      {"inflate_count": 0},
	})
	// The API and vCPU sections are still there.
	counter(t, lines[2], "vcpu", "exit_io")
	counter(t, lines[2], "put_api_requests", "actions_count")
}
