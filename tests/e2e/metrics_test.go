package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/vireo-vmm/vireo/internal/metrics"
	"github.com/vireo-vmm/vireo/internal/testutil"
)

// freeTCPAddr returns a loopback address nothing listens on now.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrape fetches and parses GET /metrics with Prometheus' own parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v", resp.Status, err)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams
}

// promValue is the value of the sample of family name with exactly the
// labels want, or -1 when there is none.
func promValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return -1
}

// TestMetrics boots one guest with a disk, an entropy device, a QMP
// socket and --metrics. The guest reads and writes the disk with dd and
// reads /dev/hwrng; then QMP's query-blockstats shows the disk's bytes
// and operations, x-vireo-query-metrics the entropy bytes and the vCPU
// exits, `info blockstats` the same line, and GET /metrics (parsed by
// Prometheus' parser) the same numbers.
func TestMetrics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	disk := filepath.Join(dir, "data.raw")
	if err := os.WriteFile(disk, bytes.Repeat([]byte{0x5a}, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "qmp.sock")
	addr := freeTCPAddr(t)
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--memory", "256M", "--no-reboot",
		"--disk", "path="+disk+",id=data", "--rng",
		"--qmp", "unix:"+sock+",server=on,wait=off", "--metrics", addr)...)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	mon := dialQMP(t, g, sock)

	// 1 MiB read, 256 KiB written and flushed; 4 KiB of entropy.
	if got := g.Run("dd if=/dev/vda of=/dev/null bs=4096 count=256 2>/dev/null; echo rc=$?", cmdTimeout); got != "rc=0" {
		t.Fatalf("dd read: %q", got)
	}
	if got := g.Run("dd if=/dev/zero of=/dev/vda bs=4096 count=64 seek=1024 conv=fsync 2>/dev/null; echo rc=$?", cmdTimeout); got != "rc=0" {
		t.Fatalf("dd write: %q", got)
	}
	if got := g.Run("head -c 4096 /dev/hwrng > /tmp/r && wc -c < /tmp/r", cmdTimeout); got != "4096" {
		t.Fatalf("reading /dev/hwrng: %q", got)
	}

	// query-blockstats, through go-qemu.
	var bs struct {
		Return []struct {
			Device string                     `json:"device"`
			Stats  map[string]json.RawMessage `json:"stats"`
		} `json:"return"`
	}
	out, err := mon.Run([]byte(`{"execute":"query-blockstats"}`))
	if err != nil {
		t.Fatalf("query-blockstats: %v", err)
	}
	if err := json.Unmarshal(out, &bs); err != nil || len(bs.Return) != 1 || bs.Return[0].Device != "data" {
		t.Fatalf("query-blockstats: %s (%v)", out, err)
	}
	st := map[string]uint64{}
	for k, v := range bs.Return[0].Stats {
		var n uint64
		if json.Unmarshal(v, &n) == nil {
			st[k] = n
		}
	}
	t.Logf("query-blockstats: rd_bytes=%d rd_operations=%d wr_bytes=%d wr_operations=%d flush_operations=%d wr_highest_offset=%d",
		st["rd_bytes"], st["rd_operations"], st["wr_bytes"], st["wr_operations"], st["flush_operations"], st["wr_highest_offset"])
	if st["rd_bytes"] < 1<<20 || st["rd_operations"] == 0 {
		t.Errorf("rd_bytes %d in %d operations, want at least 1 MiB", st["rd_bytes"], st["rd_operations"])
	}
	if st["wr_bytes"] < 256<<10 || st["wr_operations"] == 0 || st["flush_operations"] == 0 {
		t.Errorf("wr_bytes %d in %d operations, %d flushes; want at least 256 KiB and a flush", st["wr_bytes"], st["wr_operations"], st["flush_operations"])
	}
	if st["wr_highest_offset"] < (1024+64)*4096 {
		t.Errorf("wr_highest_offset %d, want at least %d", st["wr_highest_offset"], (1024+64)*4096)
	}
	if st["failed_rd_operations"]+st["failed_wr_operations"] != 0 {
		t.Errorf("failed operations: %v", st)
	}

	// x-vireo-query-metrics.
	var qm struct {
		Return metrics.Snapshot `json:"return"`
	}
	out, err = mon.Run([]byte(`{"execute":"x-vireo-query-metrics"}`))
	if err != nil || json.Unmarshal(out, &qm) != nil {
		t.Fatalf("x-vireo-query-metrics: %s (%v)", out, err)
	}
	snap := qm.Return
	if snap.RNG == nil || snap.RNG.Bytes < 4096 || snap.RNG.Requests == 0 {
		t.Errorf("rng: %+v, want at least 4096 bytes", snap.RNG)
	}
	if len(snap.VCPUs) != 1 || snap.VCPUs[0].Exits.MMIO == 0 || snap.VCPUs[0].Exits.IO == 0 {
		t.Errorf("vCPU exits: %+v", snap.VCPUs)
	}
	if len(snap.Disks) != 1 || snap.Disks[0].Read.Bytes != st["rd_bytes"] {
		t.Errorf("disks: %+v, want the rd_bytes of query-blockstats", snap.Disks)
	}
	t.Logf("x-vireo-query-metrics: rng %+v, vCPU 0 exits %+v", *snap.RNG, snap.VCPUs[0].Exits)

	// KVM's own statistics, as QEMU's query-stats gives them: read after
	// Vireo's counters, KVM's count of exits to user space for MMIO can
	// only be higher, and its count of all exits higher still. (Its port
	// I/O count is left alone: this host's KVM does not keep it.)
	var qs struct {
		Return []struct {
			Provider string `json:"provider"`
			QOMPath  string `json:"qom-path"`
			Stats    []struct {
				Name  string          `json:"name"`
				Value json.RawMessage `json:"value"`
			} `json:"stats"`
		} `json:"return"`
	}
	out, err = mon.Run([]byte(`{"execute":"query-stats","arguments":{"target":"vcpu","vcpus":["/machine/unattached/device[0]"],` +
		`"providers":[{"provider":"kvm","names":["exits","io_exits","mmio_exits","insn_emulation","halt_wait_hist"]}]}}`))
	if err != nil || json.Unmarshal(out, &qs) != nil || len(qs.Return) != 1 || qs.Return[0].Provider != "kvm" {
		t.Fatalf("query-stats: %s (%v)", out, err)
	}
	kst := map[string]uint64{}
	for _, v := range qs.Return[0].Stats {
		var n uint64
		if json.Unmarshal(v.Value, &n) == nil {
			kst[v.Name] = n
		} else if v.Name != "halt_wait_hist" || v.Value[0] != '[' {
			t.Errorf("query-stats: %s = %s", v.Name, v.Value)
		}
	}
	ours := snap.VCPUs[0].Exits
	if len(kst) != 4 || kst["mmio_exits"] < ours.MMIO || kst["exits"] < kst["mmio_exits"]+ours.Intr {
		t.Errorf("query-stats: KVM %v, Vireo's exits %+v", kst, ours)
	}
	t.Logf("query-stats: %v", kst)
	out, err = mon.Run([]byte(`{"execute":"query-stats-schemas"}`))
	if err != nil || !strings.Contains(string(out), `"target": "vm"`) || !strings.Contains(string(out), `{"name": "exits", "type": "cumulative"`) {
		t.Errorf("query-stats-schemas: %.300s (%v)", out, err)
	}
	hmpStats := run(t, mon, `{"execute":"human-monitor-command","arguments":{"command-line":"info stats vcpu exits"}}`)
	if got := fmt.Sprint(hmpStats["return"]); !strings.HasPrefix(got, "provider: kvm\r\n    exits (cumulative): ") {
		t.Errorf("info stats vcpu exits: %q", got)
	}

	// The human monitor.
	hmp := run(t, mon, `{"execute":"human-monitor-command","arguments":{"command-line":"info blockstats"}}`)
	if want := fmt.Sprintf("data: rd_bytes=%d wr_bytes=%d ", st["rd_bytes"], st["wr_bytes"]); !strings.Contains(fmt.Sprint(hmp["return"]), want) {
		t.Errorf("info blockstats: %v, want %q", hmp["return"], want)
	}

	// Prometheus: the disk is idle, so its numbers are the same; the
	// entropy and exits can only have grown.
	fams := scrape(t, addr)
	for _, c := range []struct {
		kind, stat string
	}{{"read", "rd_bytes"}, {"write", "wr_bytes"}} {
		if got := promValue(fams, "vireo_block_bytes_total", map[string]string{"device": "data", "kind": c.kind}); got != float64(st[c.stat]) {
			t.Errorf("vireo_block_bytes_total{kind=%q} = %v, QMP %s = %d", c.kind, got, c.stat, st[c.stat])
		}
	}
	if got := promValue(fams, "vireo_block_operations_total", map[string]string{"device": "data", "kind": "flush"}); got != float64(st["flush_operations"]) {
		t.Errorf("flush operations %v, QMP %d", got, st["flush_operations"])
	}
	if got := promValue(fams, "vireo_rng_bytes_total", map[string]string{}); got < float64(snap.RNG.Bytes) {
		t.Errorf("vireo_rng_bytes_total = %v, below QMP's %d", got, snap.RNG.Bytes)
	}
	if got := promValue(fams, "vireo_vcpu_exits_total", map[string]string{"vcpu": "0", "kind": "mmio"}); got < float64(snap.VCPUs[0].Exits.MMIO) {
		t.Errorf("MMIO exits %v, below QMP's %d", got, snap.VCPUs[0].Exits.MMIO)
	}

	g.Send("reboot -f\n")
	if code := g.Wait(cmdTimeout); code != 0 {
		t.Fatalf("exit code %d after reboot -f, want 0", code)
	}
	// The endpoint goes with the VM.
	time.Sleep(100 * time.Millisecond)
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("GET /metrics still answered after the VM ended")
	}
}
