package qmp

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeMigration is the fake machine's migration state (kept beside the
// fake, whose struct other tests own).
type fakeMigration struct {
	mu       sync.Mutex
	uri      string
	incoming string
	status   Migration
	params   MigrationParameters
	cancels  int
}

var fakeMigrations sync.Map // *fakeMachine -> *fakeMigration

func (f *fakeMachine) mig() *fakeMigration {
	v, _ := fakeMigrations.LoadOrStore(f, &fakeMigration{
		status: Migration{Status: "none"},
		params: MigrationParameters{DowntimeLimit: 50 * time.Millisecond},
	})
	return v.(*fakeMigration)
}

func (f *fakeMachine) Migrate(uri string) error {
	g := f.mig()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.status.Status == "active" {
		return errors.New("migration: a migration is already in progress")
	}
	g.uri = uri
	g.status = Migration{Status: "active", TotalTime: 1500 * time.Millisecond, ExpectedDowntime: 20 * time.Millisecond,
		RAM: MigrationRAM{Transferred: 1 << 20, Total: 128 << 20, Normal: 256, NormalBytes: 1 << 20, Duplicate: 30000}}
	go f.emit("MIGRATION", MigrationEventData{Status: "setup"})
	return nil
}

func (f *fakeMachine) MigrateCancel() error {
	g := f.mig()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cancels++
	g.status = Migration{Status: "cancelled"}
	return nil
}

func (f *fakeMachine) MigrateIncoming(uri string) error {
	g := f.mig()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.incoming = uri
	return nil
}

func (f *fakeMachine) MigrationStatus() Migration {
	g := f.mig()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.status
}

func (f *fakeMachine) MigrationParameters() MigrationParameters {
	g := f.mig()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.params
}

func (f *fakeMachine) SetMigrationParameters(p MigrationParameters) error {
	g := f.mig()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.params = p
	return nil
}

func TestMigrateCommands(t *testing.T) {
	s, m := newTestServer(t, Options{})
	c := negotiated(t, s)
	if got := c.do(`{"execute":"query-migrate"}`); got != `{"return": {}}` {
		t.Errorf("query-migrate before any migration: %s", got)
	}
	if got := c.do(`{"execute":"query-migrate-parameters"}`); got != `{"return": {"downtime-limit": 50, "max-bandwidth": 0, "x-vireo-verify": false}}` {
		t.Errorf("query-migrate-parameters: %s", got)
	}
	if got := c.do(`{"execute":"migrate-set-parameters","arguments":{"downtime-limit":30,"max-bandwidth":1048576,"x-vireo-verify":true}}`); got != `{"return": {}}` {
		t.Errorf("migrate-set-parameters: %s", got)
	}
	if p := m.MigrationParameters(); p.DowntimeLimit != 30*time.Millisecond || p.MaxBandwidth != 1<<20 || !p.Verify {
		t.Errorf("parameters now %+v", p)
	}
	for cmd, want := range map[string]string{
		`{"execute":"migrate-set-parameters","arguments":{"downtime-limit":-1}}`:     "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 milliseconds",
		`{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":-1}}`:      "Parameter 'max_bandwidth' expects",
		`{"execute":"migrate-set-parameters","arguments":{"multifd-channels":2}}`:    "Parameter 'multifd-channels' is unexpected",
		`{"execute":"migrate","arguments":{}}`:                                       "Parameter 'uri' is missing",
		`{"execute":"migrate","arguments":{"uri":"tcp:h:1","blk":true}}`:             "Parameter 'blk' is not supported",
		`{"execute":"migrate-set-parameters","arguments":{"downtime-limit":"fast"}}`: "Invalid parameter type for 'downtime-limit', expected: integer",
	} {
		if got := c.do(cmd); !strings.Contains(got, want) || !strings.Contains(got, `"GenericError"`) {
			t.Errorf("%s: %s, want %q", cmd, got, want)
		}
	}
	if got := c.do(`{"execute":"migrate","arguments":{"uri":"tcp:10.0.0.2:4444","detach":true}}`); got != `{"return": {}}` {
		t.Fatalf("migrate: %s", got)
	}
	if m.mig().uri != "tcp:10.0.0.2:4444" {
		t.Errorf("migrate uri %q", m.mig().uri)
	}
	if got := c.do(`{"execute":"migrate","arguments":{"uri":"tcp:10.0.0.2:4444"}}`); !strings.Contains(got, "already in progress") {
		t.Errorf("second migrate: %s", got)
	}
	info := decode(t, c.do(`{"execute":"query-migrate"}`))["return"].(map[string]any)
	ram, _ := info["ram"].(map[string]any)
	if info["status"] != "active" || info["total-time"] != jsonNumber("1500") || info["expected-downtime"] != jsonNumber("20") || ram == nil ||
		ram["transferred"] != jsonNumber("1048576") || ram["total"] != jsonNumber("134217728") || ram["duplicate"] != jsonNumber("30000") || ram["page-size"] != jsonNumber("4096") {
		t.Errorf("query-migrate while active: %v", info)
	}
	if _, ok := info["downtime"]; ok {
		t.Errorf("downtime reported while active: %v", info)
	}
	if got := c.do(`{"execute":"migrate_cancel"}`); got != `{"return": {}}` || m.mig().cancels != 1 {
		t.Errorf("migrate_cancel: %s", got)
	}
	if got := c.do(`{"execute":"query-migrate"}`); got != `{"return": {"status": "cancelled"}}` {
		t.Errorf("query-migrate after cancel: %s", got)
	}
	if got := c.do(`{"execute":"migrate-incoming","arguments":{"uri":"tcp:0:4444"}}`); got != `{"return": {}}` || m.mig().incoming != "tcp:0:4444" {
		t.Errorf("migrate-incoming: %s", got)
	}
}

func TestMigrationResultShapes(t *testing.T) {
	done := migrationResult(Migration{Status: "completed", TotalTime: 2 * time.Second, Downtime: 12 * time.Millisecond, SetupTime: time.Millisecond})
	if done.Downtime == nil || *done.Downtime != 12 || done.ExpectedDowntime != nil || done.RAM == nil || *done.TotalTime != 2000 {
		t.Errorf("completed: %+v", done)
	}
	failed := migrationResult(Migration{Status: "failed", Error: "migration: connection reset"})
	if failed.ErrorDesc != "migration: connection reset" || failed.RAM != nil {
		t.Errorf("failed: %+v", failed)
	}
	if setup := migrationResult(Migration{Status: "setup"}); setup.Status != "setup" || setup.RAM != nil {
		t.Errorf("setup: %+v", setup)
	}
}
