package qmp

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/metrics"
)

// metricsMachine is a fake machine that keeps counters.
type metricsMachine struct {
	*fakeMachine
	snap metrics.Snapshot
}

func (m *metricsMachine) Metrics() metrics.Snapshot { return m.snap }

func testSnapshot() metrics.Snapshot {
	return metrics.Snapshot{
		VCPUs: []metrics.VCPU{{Index: 0, Exits: metrics.Exits{IO: 10, MMIO: 20, Intr: 3}}},
		Disks: []metrics.Block{{
			ID:           "disk0",
			Read:         metrics.BlockOp{Ops: 4, Bytes: 4096, Failed: 1, TimeNs: 500},
			Write:        metrics.BlockOp{Ops: 2, Bytes: 1024, TimeNs: 300},
			WriteZeroes:  metrics.BlockOp{Ops: 1, Bytes: 512, TimeNs: 10},
			Flush:        metrics.BlockOp{Ops: 3, Failed: 2},
			Discard:      metrics.BlockOp{Ops: 5, Bytes: 8192},
			Invalid:      7,
			HighestWrite: 65536,
		}},
		RNG: &metrics.RNG{Requests: 2, Bytes: 128},
	}
}

func TestBlockstats(t *testing.T) {
	m := &metricsMachine{fakeMachine: newFakeMachine(), snap: testSnapshot()}
	s := NewServer(m, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { s.Close() })
	c := negotiated(t, s)

	var reply struct {
		Return []map[string]any `json:"return"`
	}
	if err := json.Unmarshal([]byte(c.do(`{"execute":"query-blockstats"}`)), &reply); err != nil {
		t.Fatal(err)
	}
	if len(reply.Return) != 1 || reply.Return[0]["device"] != "disk0" || reply.Return[0]["node-name"] != "disk0" {
		t.Fatalf("query-blockstats: %v", reply.Return)
	}
	st := reply.Return[0]["stats"].(map[string]any)
	for k, want := range map[string]float64{
		"rd_bytes": 4096, "wr_bytes": 1536, "unmap_bytes": 8192,
		"rd_operations": 4, "wr_operations": 3, "flush_operations": 3, "unmap_operations": 5,
		"failed_rd_operations": 1, "failed_wr_operations": 0, "failed_flush_operations": 2,
		"rd_total_time_ns": 500, "wr_total_time_ns": 310, "wr_highest_offset": 65536,
		"rd_merged": 0, "zone_append_bytes": 0, "invalid_rd_operations": 0,
	} {
		if got, ok := st[k].(float64); !ok || got != want {
			t.Errorf("stats[%q] = %v, want %v", k, st[k], want)
		}
	}
	if st["account_failed"] != true || st["account_invalid"] != false || st["timed_stats"] == nil {
		t.Errorf("stats flags: %v", st)
	}
	// query-nodes is accepted, as QEMU's.
	if got := c.do(`{"execute":"query-blockstats","arguments":{"query-nodes":true}}`); !strings.Contains(got, `"return"`) {
		t.Errorf("query-blockstats query-nodes: %s", got)
	}

	out := c.do(`{"execute":"human-monitor-command","arguments":{"command-line":"info blockstats"}}`)
	if want := `disk0: rd_bytes=4096 wr_bytes=1536 rd_operations=4 wr_operations=3 flush_operations=3 wr_total_time_ns=310 rd_total_time_ns=500 flush_total_time_ns=0 rd_merged=0 wr_merged=0\r\n`; !strings.Contains(out, want) {
		t.Errorf("info blockstats:\n%s\nwant %q", out, want)
	}
	if cmds := c.do(`{"execute":"query-commands"}`); !strings.Contains(cmds, `"query-blockstats"`) || !strings.Contains(cmds, `"x-vireo-query-metrics"`) {
		t.Errorf("query-commands lacks the metrics commands: %s", cmds)
	}
}

func TestQueryMetrics(t *testing.T) {
	m := &metricsMachine{fakeMachine: newFakeMachine(), snap: testSnapshot()}
	s := NewServer(m, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { s.Close() })
	c := negotiated(t, s)
	var reply struct {
		Return metrics.Snapshot `json:"return"`
	}
	raw := c.do(`{"execute":"x-vireo-query-metrics"}`)
	if err := json.Unmarshal([]byte(raw), &reply); err != nil {
		t.Fatal(err)
	}
	got := reply.Return
	if len(got.VCPUs) != 1 || got.VCPUs[0].Exits.MMIO != 20 || got.RNG == nil || got.RNG.Bytes != 128 ||
		len(got.Disks) != 1 || got.Disks[0].Invalid != 7 || got.Disks[0].Flush.Failed != 2 {
		t.Errorf("x-vireo-query-metrics: %s", raw)
	}
	// Absent device kinds are empty lists or left out, never null.
	for _, want := range []string{`"net": []`, `"console": []`} {
		if !strings.Contains(raw, want) {
			t.Errorf("reply lacks %s: %s", want, raw)
		}
	}
	if strings.Contains(raw, `"vsock"`) || strings.Contains(raw, "null") {
		t.Errorf("reply has an absent device: %s", raw)
	}
}

func TestMetricsNeedReporter(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := negotiated(t, s)
	for _, cmd := range []string{"query-blockstats", "x-vireo-query-metrics"} {
		if got := c.do(`{"execute":"` + cmd + `"}`); !strings.Contains(got, "CommandNotFound") {
			t.Errorf("%s on a machine without counters: %s", cmd, got)
		}
	}
	if got := c.do(`{"execute":"human-monitor-command","arguments":{"command-line":"info blockstats"}}`); !strings.Contains(got, "does not keep block statistics") {
		t.Errorf("info blockstats: %s", got)
	}
}
