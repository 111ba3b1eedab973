package vmm

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/migration"
	"github.com/vireo-vmm/vireo/internal/testutil"
)

func TestIncomingControllerURIs(t *testing.T) {
	testutil.RequireKVM(t)
	if _, err := NewIncomingController(Config{}, "ftp:host"); !errors.Is(err, migration.ErrURI) {
		t.Fatalf("bad URI: %v", err)
	}
	c, err := NewIncomingController(Config{}, "defer")
	if err != nil {
		t.Fatal(err)
	}
	defer c.sys.Close()
	if !c.Incoming() {
		t.Error("a deferred target does not report inmigrate")
	}
	if err := c.MigrateIncoming("tcp:nohost"); !errors.Is(err, migration.ErrURI) {
		t.Errorf("MigrateIncoming with a bad URI: %v", err)
	}
	if err := c.MigrateIncoming("tcp:127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := c.MigrateIncoming("tcp:127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "already been started") {
		t.Errorf("second MigrateIncoming: %v", err)
	}
	if err := c.Migrate("tcp:127.0.0.1:1"); !errors.Is(err, ErrMigration) {
		t.Errorf("Migrate on a target that has no VM yet: %v", err)
	}
	if st := c.MigrationInfo().Status; st != migration.StatusNone {
		t.Errorf("status %s before the source connects", st)
	}

	src := &Controller{}
	if err := src.MigrateIncoming("tcp:127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "--incoming defer") {
		t.Errorf("MigrateIncoming on a source: %v", err)
	}
	if err := src.Migrate("tcp:127.0.0.1"); !errors.Is(err, migration.ErrURI) {
		t.Errorf("Migrate with a bad URI: %v", err)
	}
	if err := src.Migrate("tcp:127.0.0.1:1"); !errors.Is(err, ErrMigration) || !strings.Contains(err.Error(), "created") {
		t.Errorf("Migrate before the VM runs: %v", err)
	}
	if err := src.MigrateCancel(); err != nil {
		t.Errorf("MigrateCancel without a migration: %v", err)
	}
	if p := src.MigrationParams(); p != migration.DefaultParams() {
		t.Errorf("default parameters %+v", p)
	}
	if err := src.SetMigrationParams(migration.Params{DowntimeLimit: -1, MaxPasses: 1}); !errors.Is(err, migration.ErrParams) {
		t.Errorf("SetMigrationParams: %v", err)
	}
}

// The target checks what the source announces before it maps memory or
// builds anything.
func TestIncomingChecks(t *testing.T) {
	c := &Controller{}
	doc, _ := json.Marshal(SnapshotConfig{MemoryBytes: 128 << 20, CPUs: 1})
	specs := func(n uint64) []guestmem.RegionSpec { return x86.RAMRegions(n) }
	if _, err := c.allocIncoming(specs(256<<20), doc); !errors.Is(err, migration.ErrLayout) {
		t.Errorf("layout of another size: %v", err)
	}
	if _, err := c.allocIncoming(specs(128<<20), []byte("{")); !errors.Is(err, ErrMigration) {
		t.Errorf("bad description: %v", err)
	}
	huge, _ := json.Marshal(SnapshotConfig{MemoryBytes: 1 << 45})
	if _, err := c.allocIncoming(specs(1<<45), huge); !errors.Is(err, ErrConfig) {
		t.Errorf("more memory than the host: %v", err)
	}
	mem, err := c.allocIncoming(specs(128<<20), doc)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	for _, state := range [][]byte{[]byte("not a state"), nil} {
		err := c.prepareIncoming(&migration.Incoming{Memory: mem, State: state})
		if !errors.Is(err, ErrMigration) {
			t.Errorf("state %q: %v", state, err)
		}
	}
}
