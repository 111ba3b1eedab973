package qmp

import (
	"fmt"
	"sort"
)

// command is one QMP command: its parameters and its handler. Handlers
// see bound arguments and the Machine, nothing of the protocol.
type command struct {
	params []param
	run    func(a args) (any, error)
}

// capabilitiesParams are qmp_capabilities' parameters.
var capabilitiesParams = []param{{name: "enable", kind: argEnumList, optional: true, enum: []string{"oob"}}}

// Results, with QEMU's member names and order.
type (
	statusInfo struct {
		Status     RunState `json:"status"`
		SingleStep bool     `json:"singlestep"`
		Running    bool     `json:"running"`
	}
	nameInfo struct {
		Name string `json:"name,omitempty"`
	}
	uuidInfo struct {
		UUID string `json:"UUID"`
	}
	kvmInfo struct {
		Enabled bool `json:"enabled"`
		Present bool `json:"present"`
	}
	cpuInfoFast struct {
		ThreadID int      `json:"thread-id"`
		Props    cpuProps `json:"props"`
		QOMPath  string   `json:"qom-path"`
		CPUIndex int      `json:"cpu-index"`
		Target   string   `json:"target"`
	}
	cpuProps struct {
		CoreID   int `json:"core-id"`
		ThreadID int `json:"thread-id"`
		SocketID int `json:"socket-id"`
	}
	memorySummary struct {
		Base    uint64 `json:"base-memory"`
		Plugged uint64 `json:"plugged-memory"`
	}
	balloonInfo struct {
		Actual uint64 `json:"actual"`
	}
	commandInfo struct {
		Name string `json:"name"`
	}
)

// zeroUUID is what QEMU reports for a VM started without -uuid.
const zeroUUID = "00000000-0000-0000-0000-000000000000"

// qomPath names vCPU i the way QEMU's machines do.
func qomPath(i int) string { return fmt.Sprintf("/machine/unattached/device[%d]", i) }

// newCommands builds the command table for s.
func newCommands(s *Server) map[string]command {
	m := s.m
	noResult := func(f func() error) func(args) (any, error) {
		return func(args) (any, error) { return empty{}, f() }
	}
	cmds := map[string]command{
		"qmp_capabilities": {params: capabilitiesParams, run: func(args) (any, error) {
			// Reaching here means negotiation is over.
			return nil, NewError(ClassCommandNotFound, "Capabilities negotiation is already complete, command ignored")
		}},
		"query-version": {run: func(args) (any, error) { return s.version, nil }},
		"query-commands": {run: func(args) (any, error) {
			names := make([]string, 0, len(s.cmds))
			for n := range s.cmds {
				names = append(names, n)
			}
			sort.Strings(names)
			out := make([]commandInfo, len(names))
			for i, n := range names {
				out[i] = commandInfo{Name: n}
			}
			return out, nil
		}},
		"query-status": {run: func(args) (any, error) {
			st := m.Status()
			return statusInfo{Status: st, Running: st == StateRunning}, nil
		}},
		"query-name": {run: func(args) (any, error) { return nameInfo{Name: s.opts.Name}, nil }},
		"query-uuid": {run: func(args) (any, error) { return uuidInfo{UUID: s.uuid()}, nil }},
		"query-kvm":  {run: func(args) (any, error) { return kvmInfo{Enabled: true, Present: true}, nil }},
		"query-cpus-fast": {run: func(args) (any, error) {
			cpus := m.CPUs()
			out := make([]cpuInfoFast, len(cpus))
			for i, c := range cpus {
				out[i] = cpuInfoFast{
					ThreadID: c.ThreadID, QOMPath: qomPath(c.Index), CPUIndex: c.Index, Target: "x86_64",
					Props: cpuProps{CoreID: c.Core, ThreadID: c.Thread, SocketID: c.Socket},
				}
			}
			return out, nil
		}},
		"query-block": {run: func(args) (any, error) { return blockInfos(m.Blocks()), nil }},
		"query-balloon": {run: func(args) (any, error) {
			actual, err := m.Balloon()
			if err != nil {
				return nil, err
			}
			return balloonInfo{Actual: actual}, nil
		}},
		"query-memory-size-summary": {run: func(args) (any, error) {
			return memorySummary{Base: m.MemorySize()}, nil
		}},
		"stop":             {run: noResult(m.Pause)},
		"cont":             {run: noResult(m.Resume)},
		"system_reset":     {run: noResult(m.Reset)},
		"system_powerdown": {run: noResult(m.Powerdown)},
		"quit":             {run: noResult(m.Quit)},
		"x-vireo-snapshot-create": {params: []param{{name: "dir", kind: argString}}, run: func(a args) (any, error) {
			dir, _ := a.str("dir")
			if dir == "" {
				return nil, genericf("Parameter 'dir' expects a directory")
			}
			if err := m.Snapshot(dir); err != nil {
				return nil, genericf("%s", err.Error())
			}
			return empty{}, nil
		}},
		"balloon": {params: []param{{name: "value", kind: argInt}}, run: func(a args) (any, error) {
			if _, err := m.Balloon(); err != nil {
				return nil, err
			}
			v, _ := a.integer("value")
			if v <= 0 {
				return nil, genericf("Parameter 'target' expects a size")
			}
			return empty{}, m.SetBalloon(uint64(v))
		}},
		"human-monitor-command": {
			params: []param{{name: "command-line", kind: argString}, {name: "cpu-index", kind: argInt, optional: true}},
			run: func(a args) (any, error) {
				line, _ := a.str("command-line")
				cpu, hasCPU := a.integer("cpu-index")
				return s.hmp(line, cpu, hasCPU)
			},
		},
	}
	migrationCommands(s, cmds) // migrate.go
	memoryCommands(s, cmds)    // memory.go
	metricsCommands(s, cmds)   // metrics.go
	statsCommands(s, cmds)     // stats.go
	return cmds
}

// Block device results (QEMU's BlockInfo with its mandatory members).
type (
	blockInfo struct {
		Device    string           `json:"device"`
		Locked    bool             `json:"locked"`
		Removable bool             `json:"removable"`
		Inserted  *blockDeviceInfo `json:"inserted,omitempty"`
		Type      string           `json:"type"`
		IOStatus  string           `json:"io-status"`
	}
	blockDeviceInfo struct {
		File             string    `json:"file"`
		RO               bool      `json:"ro"`
		Drv              string    `json:"drv"`
		Encrypted        bool      `json:"encrypted"`
		DetectZeroes     string    `json:"detect_zeroes"`
		BPS              int64     `json:"bps"`
		BPSRead          int64     `json:"bps_rd"`
		BPSWrite         int64     `json:"bps_wr"`
		IOPS             int64     `json:"iops"`
		IOPSRead         int64     `json:"iops_rd"`
		IOPSWrite        int64     `json:"iops_wr"`
		WriteThreshold   int64     `json:"write_threshold"`
		BackingFileDepth int       `json:"backing_file_depth"`
		Image            imageInfo `json:"image"`
		Cache            cacheInfo `json:"cache"`
	}
	imageInfo struct {
		Filename    string `json:"filename"`
		Format      string `json:"format"`
		VirtualSize uint64 `json:"virtual-size"`
	}
	cacheInfo struct {
		Writeback bool `json:"writeback"`
		Direct    bool `json:"direct"`
		NoFlush   bool `json:"no-flush"`
	}
)

func blockInfos(devs []BlockDevice) []blockInfo {
	out := make([]blockInfo, 0, len(devs))
	for _, d := range devs {
		format := d.Format
		if format == "" {
			format = "raw"
		}
		out = append(out, blockInfo{
			Device: d.Device, Type: "unknown", IOStatus: "ok",
			Inserted: &blockDeviceInfo{
				File: d.File, RO: d.ReadOnly, Drv: format, DetectZeroes: "off",
				Image: imageInfo{Filename: d.File, Format: format, VirtualSize: d.Size},
				Cache: cacheInfo{Writeback: true, Direct: d.Cache == "none", NoFlush: d.Cache == "unsafe"},
			},
		})
	}
	return out
}
