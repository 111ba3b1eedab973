package qmp

import (
	"math"
	"time"
)

// Live migration: QEMU's migrate, migrate_cancel, migrate-incoming,
// query-migrate, migrate-set-parameters and query-migrate-parameters,
// with the MIGRATION and MIGRATION_PASS events. Unlike QEMU, the events
// are sent without the "events" migration capability.

// Run states of a VM that migrates.
const (
	StateInMigrate   RunState = "inmigrate"   // a target waiting for its VM
	StatePostMigrate RunState = "postmigrate" // a source after a completed migration
)

// Migration is a migration's progress, for query-migrate.
type Migration struct {
	// Status is QEMU's: "none" (no migration yet), "setup", "active",
	// "completed", "failed" or "cancelled".
	Status           string
	Error            string // why it failed
	TotalTime        time.Duration
	SetupTime        time.Duration
	Downtime         time.Duration // once completed
	ExpectedDowntime time.Duration // while active
	RAM              MigrationRAM
}

// MigrationRAM counts the RAM transfer (QEMU's MigrationStats).
type MigrationRAM struct {
	Transferred, Remaining, Total uint64 // bytes
	Duplicate                     uint64 // zero pages
	Normal, NormalBytes           uint64 // pages sent with data, and their bytes
	DirtyPagesRate                uint64 // pages per second
	Mbps                          float64
	DirtySyncCount                uint64
	DowntimeBytes                 uint64 // sent with the VM paused
}

// MigrationParameters are the tunables Vireo implements.
type MigrationParameters struct {
	DowntimeLimit time.Duration
	MaxBandwidth  int64 // bytes per second; 0 is unlimited
	// Verify (x-vireo-verify) has the target check every page against
	// the source's checksum, at the cost of a longer downtime.
	Verify bool
}

// MigrationEventData is the data of a MIGRATION event.
type MigrationEventData struct {
	Status string `json:"status"`
}

// MigrationPassEventData is the data of a MIGRATION_PASS event.
type MigrationPassEventData struct {
	Pass int `json:"pass"`
}

// Results, with QEMU's member names.
type (
	migrationInfo struct {
		Status           string        `json:"status,omitempty"`
		RAM              *migrationRAM `json:"ram,omitempty"`
		TotalTime        *int64        `json:"total-time,omitempty"`
		ExpectedDowntime *int64        `json:"expected-downtime,omitempty"`
		Downtime         *int64        `json:"downtime,omitempty"`
		SetupTime        *int64        `json:"setup-time,omitempty"`
		ErrorDesc        string        `json:"error-desc,omitempty"`
	}
	migrationRAM struct {
		Transferred      uint64  `json:"transferred"`
		Remaining        uint64  `json:"remaining"`
		Total            uint64  `json:"total"`
		Duplicate        uint64  `json:"duplicate"`
		Skipped          uint64  `json:"skipped"`
		Normal           uint64  `json:"normal"`
		NormalBytes      uint64  `json:"normal-bytes"`
		DirtyPagesRate   uint64  `json:"dirty-pages-rate"`
		Mbps             float64 `json:"mbps"`
		DirtySyncCount   uint64  `json:"dirty-sync-count"`
		PostcopyRequests uint64  `json:"postcopy-requests"`
		PageSize         uint64  `json:"page-size"`
		MultifdBytes     uint64  `json:"multifd-bytes"`
		PagesPerSecond   uint64  `json:"pages-per-second"`
		PrecopyBytes     uint64  `json:"precopy-bytes"`
		DowntimeBytes    uint64  `json:"downtime-bytes"`
		PostcopyBytes    uint64  `json:"postcopy-bytes"`
	}
	migrationParams struct {
		DowntimeLimit int64 `json:"downtime-limit"`
		MaxBandwidth  int64 `json:"max-bandwidth"`
		Verify        bool  `json:"x-vireo-verify"`
	}
)

// maxDowntimeLimit is QEMU's bound on downtime-limit, in milliseconds.
const maxDowntimeLimit = 2000000

// migrationCommands adds the migration commands to cmds.
func migrationCommands(s *Server, cmds map[string]command) {
	m := s.m
	cmds["migrate"] = command{
		params: []param{
			{name: "uri", kind: argString},
			{name: "blk", kind: argBool, optional: true},
			{name: "inc", kind: argBool, optional: true},
			{name: "detach", kind: argBool, optional: true},
			{name: "resume", kind: argBool, optional: true},
		},
		run: func(a args) (any, error) {
			for _, name := range []string{"blk", "inc", "resume"} {
				if a.bools[name] {
					return nil, genericf("Parameter '%s' is not supported by Vireo", name)
				}
			}
			uri, _ := a.str("uri")
			if err := m.Migrate(uri); err != nil {
				return nil, genericf("%s", err.Error())
			}
			return empty{}, nil
		},
	}
	cmds["migrate_cancel"] = command{run: func(args) (any, error) {
		return empty{}, m.MigrateCancel()
	}}
	cmds["migrate-incoming"] = command{
		params: []param{{name: "uri", kind: argString}},
		run: func(a args) (any, error) {
			uri, _ := a.str("uri")
			if err := m.MigrateIncoming(uri); err != nil {
				return nil, genericf("%s", err.Error())
			}
			return empty{}, nil
		},
	}
	cmds["query-migrate"] = command{run: func(args) (any, error) {
		return migrationResult(m.MigrationStatus()), nil
	}}
	cmds["query-migrate-parameters"] = command{run: func(args) (any, error) {
		p := m.MigrationParameters()
		return migrationParams{DowntimeLimit: p.DowntimeLimit.Milliseconds(), MaxBandwidth: p.MaxBandwidth, Verify: p.Verify}, nil
	}}
	cmds["migrate-set-parameters"] = command{
		params: []param{
			{name: "downtime-limit", kind: argInt, optional: true},
			{name: "max-bandwidth", kind: argInt, optional: true},
			{name: "x-vireo-verify", kind: argBool, optional: true},
		},
		run: func(a args) (any, error) {
			p := m.MigrationParameters()
			if v, ok := a.integer("downtime-limit"); ok {
				if v < 0 || v > maxDowntimeLimit {
					return nil, genericf("Parameter 'downtime_limit' expects an integer in the range of 0 to %d milliseconds", maxDowntimeLimit)
				}
				p.DowntimeLimit = time.Duration(v) * time.Millisecond
			}
			if v, ok := a.integer("max-bandwidth"); ok {
				if v < 0 {
					return nil, genericf("Parameter 'max_bandwidth' expects an integer in the range of 0 to %d bytes/second", int64(math.MaxInt64))
				}
				p.MaxBandwidth = v
			}
			if v, ok := a.bools["x-vireo-verify"]; ok {
				p.Verify = v
			}
			return empty{}, m.SetMigrationParameters(p)
		},
	}
}

// migrationResult shapes query-migrate's answer as QEMU does: nothing
// before the first migration, the RAM statistics while active and once
// completed, the reason once failed.
func migrationResult(st Migration) migrationInfo {
	ms := func(d time.Duration) *int64 { v := d.Milliseconds(); return &v }
	out := migrationInfo{Status: st.Status}
	ram := &migrationRAM{
		Transferred: st.RAM.Transferred, Remaining: st.RAM.Remaining, Total: st.RAM.Total,
		Duplicate: st.RAM.Duplicate, Normal: st.RAM.Normal, NormalBytes: st.RAM.NormalBytes,
		DirtyPagesRate: st.RAM.DirtyPagesRate, Mbps: st.RAM.Mbps, DirtySyncCount: st.RAM.DirtySyncCount,
		PageSize: 4096, PrecopyBytes: st.RAM.Transferred - st.RAM.DowntimeBytes, DowntimeBytes: st.RAM.DowntimeBytes,
	}
	switch st.Status {
	case "", "none":
		return migrationInfo{}
	case "setup":
	case "active":
		out.RAM, out.TotalTime, out.SetupTime, out.ExpectedDowntime = ram, ms(st.TotalTime), ms(st.SetupTime), ms(st.ExpectedDowntime)
	case "completed":
		out.RAM, out.TotalTime, out.SetupTime, out.Downtime = ram, ms(st.TotalTime), ms(st.SetupTime), ms(st.Downtime)
	case "failed":
		out.ErrorDesc = st.Error
	}
	return out
}
