package qmp

import (
	"fmt"
	"strings"

	"github.com/vireo-vmm/vireo/internal/metrics"
)

// MetricsReporter is implemented by a Machine that keeps counters. The
// server then offers query-blockstats, x-vireo-query-metrics and the
// human monitor's `info blockstats`.
type MetricsReporter interface {
	Metrics() metrics.Snapshot
}

// blockStats is QEMU's BlockStats for one disk; Vireo's disks are single
// nodes, so the node name is the device id.
type blockStats struct {
	Device   string           `json:"device"`
	NodeName string           `json:"node-name"`
	Stats    blockDeviceStats `json:"stats"`
}

// blockDeviceStats is QEMU's BlockDeviceStats (as of 7.2) with every
// mandatory member. Vireo does not merge requests and has no zoned
// disks, so those counters are zero; it counts failed requests but not
// invalid ones per kind (x-vireo-query-metrics has their total).
// Write-zeroes requests count as writes and discards as unmaps, as in
// QEMU's virtio-blk.
type blockDeviceStats struct {
	RdBytes                     uint64 `json:"rd_bytes"`
	WrBytes                     uint64 `json:"wr_bytes"`
	ZoneAppendBytes             uint64 `json:"zone_append_bytes"`
	UnmapBytes                  uint64 `json:"unmap_bytes"`
	RdOperations                uint64 `json:"rd_operations"`
	WrOperations                uint64 `json:"wr_operations"`
	ZoneAppendOperations        uint64 `json:"zone_append_operations"`
	FlushOperations             uint64 `json:"flush_operations"`
	UnmapOperations             uint64 `json:"unmap_operations"`
	RdTotalTimeNs               uint64 `json:"rd_total_time_ns"`
	WrTotalTimeNs               uint64 `json:"wr_total_time_ns"`
	ZoneAppendTotalTimeNs       uint64 `json:"zone_append_total_time_ns"`
	FlushTotalTimeNs            uint64 `json:"flush_total_time_ns"`
	UnmapTotalTimeNs            uint64 `json:"unmap_total_time_ns"`
	WrHighestOffset             uint64 `json:"wr_highest_offset"`
	RdMerged                    uint64 `json:"rd_merged"`
	WrMerged                    uint64 `json:"wr_merged"`
	ZoneAppendMerged            uint64 `json:"zone_append_merged"`
	UnmapMerged                 uint64 `json:"unmap_merged"`
	FailedRdOperations          uint64 `json:"failed_rd_operations"`
	FailedWrOperations          uint64 `json:"failed_wr_operations"`
	FailedZoneAppendOperations  uint64 `json:"failed_zone_append_operations"`
	FailedFlushOperations       uint64 `json:"failed_flush_operations"`
	FailedUnmapOperations       uint64 `json:"failed_unmap_operations"`
	InvalidRdOperations         uint64 `json:"invalid_rd_operations"`
	InvalidWrOperations         uint64 `json:"invalid_wr_operations"`
	InvalidZoneAppendOperations uint64 `json:"invalid_zone_append_operations"`
	InvalidFlushOperations      uint64 `json:"invalid_flush_operations"`
	InvalidUnmapOperations      uint64 `json:"invalid_unmap_operations"`
	AccountInvalid              bool   `json:"account_invalid"`
	AccountFailed               bool   `json:"account_failed"`
	TimedStats                  []any  `json:"timed_stats"`
}

// toBlockStats translates the disks' counters to query-blockstats.
func toBlockStats(disks []metrics.Block) []blockStats {
	out := make([]blockStats, 0, len(disks))
	for _, d := range disks {
		out = append(out, blockStats{Device: d.ID, NodeName: d.ID, Stats: blockDeviceStats{
			RdBytes:               d.Read.Bytes,
			WrBytes:               d.Write.Bytes + d.WriteZeroes.Bytes,
			UnmapBytes:            d.Discard.Bytes,
			RdOperations:          d.Read.Ops,
			WrOperations:          d.Write.Ops + d.WriteZeroes.Ops,
			FlushOperations:       d.Flush.Ops,
			UnmapOperations:       d.Discard.Ops,
			RdTotalTimeNs:         d.Read.TimeNs,
			WrTotalTimeNs:         d.Write.TimeNs + d.WriteZeroes.TimeNs,
			FlushTotalTimeNs:      d.Flush.TimeNs,
			UnmapTotalTimeNs:      d.Discard.TimeNs,
			WrHighestOffset:       d.HighestWrite,
			FailedRdOperations:    d.Read.Failed,
			FailedWrOperations:    d.Write.Failed + d.WriteZeroes.Failed,
			FailedFlushOperations: d.Flush.Failed,
			FailedUnmapOperations: d.Discard.Failed,
			AccountFailed:         true,
			TimedStats:            []any{},
		}})
	}
	return out
}

// withEmptyLists gives the snapshot's lists a JSON form of [] rather
// than null, which clients iterate more easily.
func withEmptyLists(s metrics.Snapshot) metrics.Snapshot {
	if s.VCPUs == nil {
		s.VCPUs = []metrics.VCPU{}
	}
	if s.Disks == nil {
		s.Disks = []metrics.Block{}
	}
	if s.Nets == nil {
		s.Nets = []metrics.Net{}
	}
	if s.Consoles == nil {
		s.Consoles = []metrics.Console{}
	}
	return s
}

// metricsCommands adds query-blockstats and x-vireo-query-metrics when
// the machine keeps counters.
func metricsCommands(s *Server, cmds map[string]command) {
	r, ok := s.m.(MetricsReporter)
	if !ok {
		return
	}
	cmds["query-blockstats"] = command{
		params: []param{{name: "query-nodes", kind: argBool, optional: true}},
		run: func(args) (any, error) {
			return toBlockStats(r.Metrics().Disks), nil
		},
	}
	cmds["x-vireo-query-metrics"] = command{run: func(args) (any, error) {
		return withEmptyLists(r.Metrics()), nil
	}}
}

// hmpBlockstats prints `info blockstats` as QEMU does.
func (s *Server) hmpBlockstats(b *strings.Builder) {
	r, ok := s.m.(MetricsReporter)
	if !ok {
		b.WriteString("Error: this machine does not keep block statistics\n")
		return
	}
	for _, d := range toBlockStats(r.Metrics().Disks) {
		st := d.Stats
		fmt.Fprintf(b, "%s: rd_bytes=%d wr_bytes=%d rd_operations=%d wr_operations=%d flush_operations=%d"+
			" wr_total_time_ns=%d rd_total_time_ns=%d flush_total_time_ns=%d rd_merged=%d wr_merged=%d\n",
			d.Device, st.RdBytes, st.WrBytes, st.RdOperations, st.WrOperations, st.FlushOperations,
			st.WrTotalTimeNs, st.RdTotalTimeNs, st.FlushTotalTimeNs, st.RdMerged, st.WrMerged)
	}
}
