package qmp

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/kvm"
)

// statsMachine is a fake machine with KVM statistics: the VM's and two
// vCPUs'.
type statsMachine struct {
	*fakeMachine
}

// Flags of KVM's statistics descriptors: type | unit<<4 | base<<8.
const (
	flagCumulative  = 0
	flagInstantBool = 1 | 4<<4
	flagPeak        = 2
	flagLinearHist  = 3
	flagLogHistSecs = 4 | 2<<4
)

func (m *statsMachine) KVMStats(target string) ([]StatsSet, error) {
	stat := func(name string, flags uint32, exp, bucket int, vals ...uint64) kvm.Stat {
		return kvm.Stat{StatDesc: kvm.StatDesc{Name: name, Flags: flags, Exponent: exp, Size: len(vals), BucketSize: bucket}, Values: vals}
	}
	if target == "vm" {
		return []StatsSet{{VCPU: -1, Stats: []kvm.Stat{
			stat("remote_tlb_flush", flagCumulative, 0, 0, 7),
			stat("max_mmu_rmap_size", flagPeak, 0, 0, 3),
		}}}, nil
	}
	var out []StatsSet
	for i := range 2 {
		out = append(out, StatsSet{VCPU: i, Stats: []kvm.Stat{
			stat("exits", flagCumulative, 0, 0, uint64(100+i)),
			stat("guest_mode", flagInstantBool, 0, 0, uint64(i)),
			stat("halt_wait_hist", flagLogHistSecs, -9, 0, 1, 2, 3),
			stat("lin_hist", flagLinearHist, 0, 16, 4, 5),
		}})
	}
	return out, nil
}

// compact drops the spaces of QEMU's JSON layout.
func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	json.Compact(&b, raw)
	return b.String()
}

func newStatsServer(t *testing.T) *client {
	s := NewServer(&statsMachine{newFakeMachine()}, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { s.Close() })
	return negotiated(t, s)
}

func TestQueryStats(t *testing.T) {
	c := newStatsServer(t)
	for _, tc := range []struct{ args, want string }{
		{`{"target":"vm"}`, `[{"provider":"kvm","stats":[{"name":"remote_tlb_flush","value":7},{"name":"max_mmu_rmap_size","value":3}]}]`},
		{`{"target":"vcpu","vcpus":["/machine/unattached/device[1]"]}`,
			`[{"provider":"kvm","qom-path":"/machine/unattached/device[1]","stats":[{"name":"exits","value":101},{"name":"guest_mode","value":true},{"name":"halt_wait_hist","value":[1,2,3]},{"name":"lin_hist","value":[4,5]}]}]`},
		{`{"target":"vcpu","providers":[{"provider":"kvm","names":["exits"]}]}`,
			`[{"provider":"kvm","qom-path":"/machine/unattached/device[0]","stats":[{"name":"exits","value":100}]},{"provider":"kvm","qom-path":"/machine/unattached/device[1]","stats":[{"name":"exits","value":101}]}]`},
		{`{"target":"vcpu","providers":[{"provider":"kvm","names":[]}]}`, `[]`},
		{`{"target":"vcpu","providers":[]}`, `[]`},
		{`{"target":"vcpu","vcpus":["/nope"]}`, `[]`},
		{`{"target":"vm","providers":[{"provider":"kvm","names":["nope"]},{"provider":"kvm"}]}`,
			`[{"provider":"kvm","stats":[{"name":"remote_tlb_flush","value":7},{"name":"max_mmu_rmap_size","value":3}]}]`},
	} {
		got := c.do(`{"execute":"query-stats","arguments":` + tc.args + `}`)
		var reply struct{ Return json.RawMessage }
		if err := json.Unmarshal([]byte(got), &reply); err != nil || compact(reply.Return) != tc.want {
			t.Errorf("query-stats %s:\n got %s\nwant %s", tc.args, got, tc.want)
		}
	}
	// Bad arguments get QEMU's messages.
	for args, want := range map[string]string{
		`{}`:                            "Parameter 'target' is missing",
		`{"target":"cryptodev"}`:        "Parameter 'target' does not accept value 'cryptodev'",
		`{"target":"vm","vcpus":["x"]}`: "Parameter 'vcpus' is unexpected",
		`{"target":"vm","providers":[{"provider":"foo"}]}`:             "Parameter 'provider' does not accept value 'foo'",
		`{"target":"vm","providers":{}}`:                               "Invalid parameter type for 'providers', expected: array",
		`{"target":"vm","providers":[1]}`:                              "Invalid parameter type for 'providers[0]', expected: object",
		`{"target":"vm","providers":[{}]}`:                             "Parameter 'providers[0].provider' is missing",
		`{"target":"vm","providers":[{"provider":"kvm","names":[1]}]}`: "Invalid parameter type for 'providers[0].names[0]', expected: string",
		`{"target":"vm","providers":[{"provider":"kvm","x":1}]}`:       "Parameter 'providers[0].x' is unexpected",
		`{"target":"vcpu","vcpus":"x"}`:                                "Invalid parameter type for 'vcpus', expected: array",
	} {
		if got := c.do(`{"execute":"query-stats","arguments":` + args + `}`); !strings.Contains(got, `"GenericError"`) || !strings.Contains(got, want) {
			t.Errorf("query-stats %s: %s, want %q", args, got, want)
		}
	}
}

func TestQueryStatsSchemas(t *testing.T) {
	c := newStatsServer(t)
	want := `[{"provider":"kvm","target":"vm","stats":[{"name":"remote_tlb_flush","type":"cumulative","exponent":0},{"name":"max_mmu_rmap_size","type":"peak","exponent":0}]},` +
		`{"provider":"kvm","target":"vcpu","stats":[{"name":"exits","type":"cumulative","exponent":0},{"name":"guest_mode","type":"instant","unit":"boolean","exponent":0},` +
		`{"name":"halt_wait_hist","type":"log2-histogram","unit":"seconds","base":10,"exponent":-9},{"name":"lin_hist","type":"linear-histogram","exponent":0,"bucket-size":16}]}]`
	for _, args := range []string{`{}`, `{"provider":"kvm"}`} {
		got := c.do(`{"execute":"query-stats-schemas","arguments":` + args + `}`)
		var reply struct{ Return json.RawMessage }
		if err := json.Unmarshal([]byte(got), &reply); err != nil || compact(reply.Return) != want {
			t.Errorf("query-stats-schemas %s:\n got %s\nwant %s", args, got, want)
		}
	}
	if got := c.do(`{"execute":"query-stats-schemas","arguments":{"provider":"x"}}`); !strings.Contains(got, "does not accept value 'x'") {
		t.Errorf("query-stats-schemas provider x: %s", got)
	}
}

func TestInfoStats(t *testing.T) {
	c := newStatsServer(t)
	hmp := func(line string) string {
		var reply struct{ Return string }
		json.Unmarshal([]byte(c.do(`{"execute":"human-monitor-command","arguments":{"command-line":"`+line+`","cpu-index":1}}`)), &reply)
		return reply.Return
	}
	if got, want := hmp("info stats vcpu"), "provider: kvm\r\n    exits (cumulative): 101\r\n    guest_mode (instant, boolean): yes\r\n"+
		"    halt_wait_hist (log2-histogram, seconds): [1 2 3]\r\n    lin_hist (linear-histogram): [4 5]\r\n"; got != want {
		t.Errorf("info stats vcpu:\n%q\nwant\n%q", got, want)
	}
	if got, want := hmp("info stats vm remote_tlb_flush,nope kvm"), "provider: kvm\r\n    remote_tlb_flush (cumulative): 7\r\n"; got != want {
		t.Errorf("info stats vm NAMES kvm: %q, want %q", got, want)
	}
	for line, want := range map[string]string{"info stats": "expected a target", "info stats vm * x": "does not accept value 'x'"} {
		if got := hmp(line); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", line, got, want)
		}
	}
}

func TestStatsNeedReporter(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := negotiated(t, s)
	for _, cmd := range []string{"query-stats", "query-stats-schemas"} {
		if got := c.do(`{"execute":"` + cmd + `"}`); !strings.Contains(got, "CommandNotFound") {
			t.Errorf("%s on a machine without statistics: %s", cmd, got)
		}
	}
}
