package metrics

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func sampleSnapshot() Snapshot {
	return Snapshot{
		VCPUs: []VCPU{{Index: 0, Exits: Exits{IO: 10, MMIO: 20, HLT: 0, Intr: 3, Other: 1}}, {Index: 1, Exits: Exits{MMIO: 5}}},
		Disks: []Block{{
			ID:           `di"sk\0`,
			Read:         BlockOp{Ops: 4, Bytes: 4096, TimeNs: 1_500_000_000},
			Write:        BlockOp{Ops: 2, Bytes: 1024, Failed: 1},
			Invalid:      7,
			HighestWrite: 65536,
		}},
		Nets:     []Net{{ID: "eth0", RxPackets: 5, RxBytes: 500, TxPackets: 4, TxBytes: 400, TxDropped: 2}},
		Consoles: []Console{{ID: "console", RxBytes: 3, TxBytes: 300}},
		Vsock:    &Vsock{RxPackets: 7, RxBytes: 70, TxPackets: 6, TxBytes: 60, ConnsAdded: 1, ConnsRemoved: 1, Resets: 1},
		RNG:      &RNG{Requests: 2, Bytes: 128},
		Balloon:  &Balloon{Inflates: 2, Deflates: 1, InflatedPages: 16, StatsUpdates: 9},
	}
}

// parse parses the exposition with Prometheus' own parser.
func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus cannot parse the exposition: %v\n%s", err, text)
	}
	return fams
}

// value finds the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		if len(got) != len(want) {
			continue
		}
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("family %s has no sample %v", name, want)
	return 0
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sampleSnapshot()); err != nil {
		t.Fatal(err)
	}
	fams := parse(t, b.String())
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"vireo_vcpu_exits_total", map[string]string{"vcpu": "0", "kind": "mmio"}, 20},
		{"vireo_vcpu_exits_total", map[string]string{"vcpu": "1", "kind": "mmio"}, 5},
		{"vireo_vcpu_exits_total", map[string]string{"vcpu": "0", "kind": "hlt"}, 0},
		{"vireo_block_operations_total", map[string]string{"device": `di"sk\0`, "kind": "read"}, 4},
		{"vireo_block_bytes_total", map[string]string{"device": `di"sk\0`, "kind": "write"}, 1024},
		{"vireo_block_failed_operations_total", map[string]string{"device": `di"sk\0`, "kind": "write"}, 1},
		{"vireo_block_operation_seconds_total", map[string]string{"device": `di"sk\0`, "kind": "read"}, 1.5},
		{"vireo_block_invalid_requests_total", map[string]string{"device": `di"sk\0`}, 7},
		{"vireo_block_highest_write_offset_bytes", map[string]string{"device": `di"sk\0`}, 65536},
		{"vireo_net_bytes_total", map[string]string{"device": "eth0", "kind": "rx"}, 500},
		{"vireo_net_dropped_packets_total", map[string]string{"device": "eth0", "kind": "tx"}, 2},
		{"vireo_console_bytes_total", map[string]string{"device": "console", "kind": "tx"}, 300},
		{"vireo_vsock_connections_total", map[string]string{"kind": "added"}, 1},
		{"vireo_vsock_resets_total", nil, 1},
		{"vireo_rng_bytes_total", nil, 128},
		{"vireo_rng_requests_total", nil, 2},
		{"vireo_balloon_requests_total", map[string]string{"kind": "inflate"}, 2},
		{"vireo_balloon_pages_total", map[string]string{"kind": "inflate"}, 16},
		{"vireo_balloon_stats_updates_total", nil, 9},
	} {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for name, f := range fams {
		want := dto.MetricType_COUNTER
		if name == "vireo_block_highest_write_offset_bytes" {
			want = dto.MetricType_GAUGE
		}
		if f.GetType() != want || f.GetHelp() == "" {
			t.Errorf("%s: type %v, help %q", name, f.GetType(), f.GetHelp())
		}
		if want == dto.MetricType_COUNTER && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s does not end in _total", name)
		}
	}
}

// TestWriteTextEmpty: a VM with no devices (or none yet) exposes only
// what it has, and the exposition still parses.
func TestWriteTextEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, Snapshot{}); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 0 {
		t.Errorf("empty snapshot exposed:\n%s", b.String())
	}
	b.Reset()
	WriteText(&b, Snapshot{VCPUs: []VCPU{{Index: 0}}})
	if fams := parse(t, b.String()); len(fams) != 1 {
		t.Errorf("%d families for a VM without devices, want 1", len(fams))
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler(sampleSnapshot))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentType {
		t.Fatalf("GET /metrics: %s, %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if got := expfmt.ResponseFormat(resp.Header); got.FormatType() != expfmt.TypeTextPlain {
		t.Errorf("Prometheus reads the content type as %v", got)
	}
	parse(t, string(body))
	for path, want := range map[string]int{"/": 404, "/metrics/x": 404} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err = http.Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d", resp.StatusCode)
	}
}

func TestCounter(t *testing.T) {
	var c Counter
	if c.Inc() != 1 || c.Add(4) != 5 || c.Load() != 5 {
		t.Fatalf("counter at %d", c.Load())
	}
	c.Store(42)
	var m Max
	for _, v := range []uint64{3, 9, 2} {
		m.Observe(v)
	}
	if c.Load() != 42 || m.Load() != 9 {
		t.Errorf("counter %d, max %d", c.Load(), m.Load())
	}
	if n := testing.AllocsPerRun(100, func() { c.Inc(); m.Observe(100) }); n != 0 {
		t.Errorf("%v allocations per count", n)
	}
}

func TestCounterConcurrent(t *testing.T) {
	var c Counter
	var m Max
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			for i := range 1000 {
				c.Inc()
				m.Observe(uint64(g*1000 + i))
			}
			done <- struct{}{}
		}()
	}
	for range 4 {
		<-done
	}
	if c.Load() != 4000 || m.Load() != 3999 {
		t.Errorf("counter %d, max %d", c.Load(), m.Load())
	}
}
