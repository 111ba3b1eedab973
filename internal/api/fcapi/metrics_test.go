package fcapi

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func readMetricLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func counter(t *testing.T, line map[string]any, group, name string) float64 {
	t.Helper()
	g, ok := line[group].(map[string]any)
	if !ok {
		t.Fatalf("metrics line has no group %q: %v", group, line)
	}
	v, ok := g[name].(float64)
	if !ok {
		t.Fatalf("metrics group %q has no %q: %v", group, name, g)
	}
	return v
}

func TestMetricsFlush(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	h := newHarness(t, func(o *Options) { o.Now = func() time.Time { return now } })
	path := filepath.Join(h.dir, "metrics.json")
	h.ok("PUT", "/metrics", `{"metrics_path": "`+path+`"}`)
	h.fault("PUT", "/metrics", `{"metrics_path": "`+path+`"}`, "Metrics error: "+msgMetricsTwice)
	h.fault("PUT", "/metrics", `{"path": "x"}`, "unknown field `path`")
	h.fault("PUT", "/drives/x", `{"drive_id": "y", "path_on_host": "z", "is_root_device": false}`, "does not match")
	var mc machineConfig
	h.get("/machine-config", &mc)
	h.boot()
	h.vm.setExits(ExitCounts{IO: 10, MMIO: 4, HLT: 3, Intr: 2, Other: 1})
	h.ok("PUT", "/actions", `{"action_type": "FlushMetrics"}`)
	h.vm.setExits(ExitCounts{IO: 15, MMIO: 4, HLT: 3, Intr: 2, Other: 1})
	h.ok("PUT", "/actions", `{"action_type": "FlushMetrics"}`)

	lines := readMetricLines(t, path)
	if len(lines) != 2 {
		t.Fatalf("%d metrics lines, want 2", len(lines))
	}
	first, second := lines[0], lines[1]
	if first["utc_timestamp_ms"].(float64) != 1_700_000_000_000 {
		t.Errorf("timestamp = %v", first["utc_timestamp_ms"])
	}
	for _, c := range []struct {
		group, name string
		want        float64
	}{
		{"put_api_requests", "metrics_count", 3},
		{"put_api_requests", "metrics_fails", 2},
		{"put_api_requests", "drive_count", 1},
		{"put_api_requests", "drive_fails", 1},
		{"put_api_requests", "boot_source_count", 1},
		{"put_api_requests", "actions_count", 2}, // InstanceStart, then the first FlushMetrics
		{"put_api_requests", "actions_fails", 0},
		{"get_api_requests", "machine_cfg_count", 1},
		{"patch_api_requests", "drive_count", 0},
		{"vcpu", "exit_io", 10},
		{"vcpu", "exit_mmio", 4},
		{"vcpu", "exit_hlt", 3},
		{"vcpu", "exit_intr", 2},
		{"vcpu", "exit_other", 1},
	} {
		if got := counter(t, first, c.group, c.name); got != c.want {
			t.Errorf("first line %s.%s = %v, want %v", c.group, c.name, got, c.want)
		}
	}
	// The second line holds only what happened since the first.
	for _, c := range []struct {
		group, name string
		want        float64
	}{
		{"put_api_requests", "metrics_count", 0},
		{"put_api_requests", "actions_count", 1},
		{"vcpu", "exit_io", 5},
		{"vcpu", "exit_mmio", 0},
	} {
		if got := counter(t, second, c.group, c.name); got != c.want {
			t.Errorf("second line %s.%s = %v, want %v", c.group, c.name, got, c.want)
		}
	}
	// Counters that went down (a rebuilt machine) count from zero.
	h.vm.setExits(ExitCounts{IO: 2})
	h.ok("PUT", "/actions", `{"action_type": "FlushMetrics"}`)
	lines = readMetricLines(t, path)
	if got := counter(t, lines[2], "vcpu", "exit_io"); got != 2 {
		t.Errorf("after a restart exit_io = %v, want 2", got)
	}
	// Close writes a last line.
	h.s.Close()
	if n := len(readMetricLines(t, path)); n != 4 {
		t.Errorf("%d lines after Close, want 4", n)
	}
}

func TestMetricsPeriodic(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MetricsInterval = 10 * time.Millisecond })
	path := filepath.Join(h.dir, "metrics.json")
	h.ok("PUT", "/metrics", `{"metrics_path": "`+path+`"}`)
	h.boot()
	deadline := time.Now().Add(10 * time.Second)
	for len(readMetricLines(t, path)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no periodic metrics lines")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.s.Close()
	n := len(readMetricLines(t, path))
	time.Sleep(50 * time.Millisecond)
	if m := len(readMetricLines(t, path)); m != n {
		t.Fatalf("metrics written after Close: %d then %d lines", n, m)
	}
}

func TestMetricsOpenFailure(t *testing.T) {
	h := newHarness(t)
	h.fault("PUT", "/metrics", `{"metrics_path": "`+h.dir+`/missing/dir/m"}`, "Metrics error: ")
	// A failed open does not use up the one configuration allowed.
	h.ok("PUT", "/metrics", `{"metrics_path": "`+h.dir+`/m"}`)
}
