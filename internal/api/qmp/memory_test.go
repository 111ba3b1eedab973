package qmp

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// memoryMachine is a fake machine that reports host memory.
type memoryMachine struct {
	*fakeMachine
	hm  HostMemory
	err error
}

func (m *memoryMachine) HostMemory() (HostMemory, error) { return m.hm, m.err }

func TestHostMemory(t *testing.T) {
	m := &memoryMachine{fakeMachine: newFakeMachine(), hm: HostMemory{
		GuestMemory: 256 << 20, HugePages: "thp", Merge: true, Resident: 100 << 20, AnonHugePages: 64 << 20,
		KSMMergingPages: 12, ProcessRSS: 130 << 20,
		Balloon: &BalloonMemory{Target: 64 << 20, Actual: 32 << 20, Discarded: 30 << 20, StatsInterval: 2,
			Stats: map[string]uint64{"total_memory": 200 << 20, "free_memory": 10 << 20}},
	}}
	s := NewServer(m, Options{Package: "vireo-test", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { s.Close() })
	c := negotiated(t, s)
	got := decode(t, c.do(`{"execute":"x-query-vireo-memory"}`))
	r := got["return"].(map[string]any)
	if r["huge-pages"] != "thp" || r["merge"] != true || r["anon-huge-pages"].(interface{ String() string }).String() != "67108864" {
		t.Errorf("x-query-vireo-memory: %v", r)
	}
	bl := r["balloon"].(map[string]any)
	if bl["stats"].(map[string]any)["free_memory"].(interface{ String() string }).String() != "10485760" {
		t.Errorf("balloon: %v", bl)
	}
	if cmds := c.do(`{"execute":"query-commands"}`); !strings.Contains(cmds, `"x-query-vireo-memory"`) {
		t.Errorf("query-commands lacks x-query-vireo-memory: %s", cmds)
	}
	out := c.do(`{"execute":"human-monitor-command","arguments":{"command-line":"info vireo-memory"}}`)
	for _, want := range []string{
		`guest memory: 256 MiB (huge pages: thp, merge: on, shared: off)`,
		`transparent huge pages: 64 MiB`,
		`KSM: 12 pages merging`,
		`balloon: target 64 MiB, actual 32 MiB, 30 MiB discarded`,
		`balloon stat free_memory: 10485760\r\nballoon stat total_memory: 209715200`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("info vireo-memory lacks %q:\n%s", want, out)
		}
	}
	m.err = errors.New("smaps unreadable")
	if got := c.do(`{"execute":"x-query-vireo-memory"}`); !strings.Contains(got, `"desc": "smaps unreadable"`) {
		t.Errorf("error reply %s", got)
	}
}

func TestHostMemoryNeedsReporter(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := negotiated(t, s)
	if got := c.do(`{"execute":"x-query-vireo-memory"}`); !strings.Contains(got, "CommandNotFound") {
		t.Errorf("x-query-vireo-memory on a machine without reports: %s", got)
	}
	if got := c.do(`{"execute":"human-monitor-command","arguments":{"command-line":"info vireo-memory"}}`); !strings.Contains(got, "does not report host memory") {
		t.Errorf("info vireo-memory: %s", got)
	}
}
