package fcapi

import (
	"errors"
	"path/filepath"

	"github.com/vireo-vmm/vireo/internal/vmm"
)

// Snapshots: PUT /snapshot/create on a paused VM and PUT /snapshot/load
// on a fresh process, mapped onto Vireo's snapshots to explicit files
// (internal/vmm/snapshot_fc.go has the file layout and Diff semantics).

// snapshotCreateBody is the body of PUT /snapshot/create.
type snapshotCreateBody struct {
	SnapshotType *string `json:"snapshot_type"`
	SnapshotPath string  `json:"snapshot_path"`
	MemFilePath  string  `json:"mem_file_path"`
	// Version is Firecracker 1.0-1.4's target snapshot format version
	// (firecracker-go-sdk v1.0.0 knows it); Vireo writes its own format
	// and ignores it.
	Version *string `json:"version"`
}

// memBackend is SnapshotLoadParams' mem_backend.
type memBackend struct {
	BackendType string `json:"backend_type"`
	BackendPath string `json:"backend_path"`
}

// vsockOverride is SnapshotLoadParams' vsock_override.
type vsockOverride struct {
	UDSPath string `json:"uds_path"`
}

// networkOverride is one of SnapshotLoadParams' network_overrides.
type networkOverride struct {
	IfaceID     string `json:"iface_id"`
	HostDevName string `json:"host_dev_name"`
}

// snapshotLoadBody is the body of PUT /snapshot/load.
type snapshotLoadBody struct {
	SnapshotPath        string            `json:"snapshot_path"`
	MemFilePath         *string           `json:"mem_file_path"`
	MemBackend          *memBackend       `json:"mem_backend"`
	EnableDiffSnapshots *bool             `json:"enable_diff_snapshots"`
	TrackDirtyPages     *bool             `json:"track_dirty_pages"`
	ResumeVM            *bool             `json:"resume_vm"`
	NetworkOverrides    []networkOverride `json:"network_overrides"`
	VsockOverride       *vsockOverride    `json:"vsock_override"`
	ClockRealtime       *bool             `json:"clock_realtime"`
	HugePages           *string           `json:"huge_pages"`
}

type (
	createSnapshot struct {
		files vmm.SnapshotFiles
		diff  bool
	}
	loadSnapshot struct {
		files  vmm.SnapshotFiles
		track  bool
		resume bool
	}
)

func (createSnapshot) isAction() {}
func (loadSnapshot) isAction()   {}

// Firecracker's messages for snapshot requests.
const (
	msgMissingMem    = "missing field: either `mem_backend` or `mem_file_path` is required"
	msgTooManyMem    = "too many fields: either `mem_backend` or `mem_file_path` exclusively is required"
	msgLoadNotAllow  = "Load snapshot error: Loading a microVM snapshot not allowed after configuring boot-specific resources."
	msgSaveRunning   = "Create snapshot error: Cannot save the microVM state: Operation not allowed: save/restore unavailable while running"
	msgDiffUntracked = "The requested operation is not supported: Diff snapshots are not allowed on uVMs with dirty page tracking disabled."
)

// parseSnapshot parses PUT /snapshot/{create,load}.
func parseSnapshot(method, path, op string, body []byte) (endpoint, action, *fault) {
	switch op {
	case "create":
		var b snapshotCreateBody
		if err := decodeBody(body, &b); err != nil {
			return epNone, nil, bodyError(err)
		}
		diff := false
		if b.SnapshotType != nil {
			switch *b.SnapshotType {
			case "Full":
			case "Diff":
				diff = true
			default:
				return epNone, nil, bodyError(unknownVariant(*b.SnapshotType, "Diff", "Full"))
			}
		}
		return epNone, createSnapshot{files: vmm.SnapshotFiles{State: b.SnapshotPath, Memory: b.MemFilePath}, diff: diff}, nil
	case "load":
		return parseLoad(body)
	case "":
		return epNone, nil, badRequest("Missing snapshot operation type.")
	}
	return epNone, nil, invalidPath(method, path)
}

func parseLoad(body []byte) (endpoint, action, *fault) {
	var b snapshotLoadBody
	if err := decodeBody(body, &b); err != nil {
		return epNone, nil, bodyError(err)
	}
	var mem string
	switch {
	case b.MemFilePath != nil && b.MemBackend != nil:
		return epNone, nil, bodyError(errors.New(msgTooManyMem))
	case b.MemFilePath != nil:
		mem = *b.MemFilePath
	case b.MemBackend != nil:
		switch b.MemBackend.BackendType {
		case "File":
			mem = b.MemBackend.BackendPath
		case "Uffd":
			return epNone, nil, notSupported("the Uffd memory backend")
		default:
			return epNone, nil, bodyError(unknownVariant(b.MemBackend.BackendType, "File", "Uffd"))
		}
	default:
		return epNone, nil, bodyError(errors.New(msgMissingMem))
	}
	// Overrides Vireo does not apply are refused rather than ignored.
	switch {
	case len(b.NetworkOverrides) > 0:
		return epNone, nil, notSupported("network_overrides")
	case b.VsockOverride != nil:
		return epNone, nil, notSupported("vsock_override")
	case b.ClockRealtime != nil && *b.ClockRealtime:
		return epNone, nil, notSupported("clock_realtime")
	case b.HugePages != nil && *b.HugePages != "Snapshot":
		return epNone, nil, notSupported("huge_pages other than Snapshot")
	}
	a := loadSnapshot{
		files:  vmm.SnapshotFiles{State: b.SnapshotPath, Memory: mem},
		track:  isTrue(b.EnableDiffSnapshots) || isTrue(b.TrackDirtyPages),
		resume: isTrue(b.ResumeVM),
	}
	return epNone, a, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

// SnapshotInstance is an Instance that saves snapshots to files and
// describes the machine it restored. The controller's instance is one.
type SnapshotInstance interface {
	Instance
	SnapshotToFiles(files vmm.SnapshotFiles, diff bool) error
	// Shape is the machine's vCPU count and RAM size in bytes.
	Shape() (vcpus int, memBytes uint64)
}

func (i controllerInstance) SnapshotToFiles(files vmm.SnapshotFiles, diff bool) error {
	return i.c.SnapshotToFiles(files, diff)
}

func (i controllerInstance) Shape() (int, uint64) {
	return len(i.c.VCPUs()), i.c.MemoryBytes()
}

// createSnapshot applies PUT /snapshot/create: only on a paused VM, Diff
// only with dirty page tracking, as in Firecracker.
func (s *Server) createSnapshot(a createSnapshot) *fault {
	sn, ok := s.vm.(SnapshotInstance)
	if !ok {
		return notSupported("snapshots of this VM")
	}
	if s.vm.State() != vmm.StatePaused {
		return badRequest(msgSaveRunning)
	}
	if a.diff && !s.res.machine.TrackDirtyPages {
		return badRequest(msgDiffUntracked)
	}
	if err := sn.SnapshotToFiles(a.files, a.diff); err != nil {
		return badRequest("Create snapshot error: %s", err)
	}
	return nil
}

// loadSnapshot applies PUT /snapshot/load: only on a fresh process, before
// anything but the logger and metrics is configured. The loaded VM is
// paused unless resume_vm is set.
func (s *Server) loadSnapshot(a loadSnapshot) *fault {
	if s.res.bootConfigured() {
		return badRequest(msgLoadNotAllow)
	}
	if s.closed {
		return badRequest("Load snapshot error: the API server is shutting down")
	}
	if s.opts.Start == nil {
		return badRequest("Load snapshot error: no VMM is attached to this API server")
	}
	if err := checkOpen(a.files.State, 0, false); err != nil {
		return badRequest("Load snapshot error: Failed to restore from snapshot: Failed to open snapshot file: %s", err)
	}
	if err := checkOpen(a.files.Memory, 0, false); err != nil {
		return badRequest("Load snapshot error: Failed to restore from snapshot: Failed to load guest memory: %s", err)
	}
	files := a.files
	for _, p := range []*string{&files.State, &files.Memory} {
		if abs, err := filepath.Abs(*p); err == nil {
			*p = abs
		}
	}
	cfg := vmm.Config{RestoreFiles: &files, StartPaused: !a.resume, TrackDirtyPages: a.track, NoReboot: true}
	vm, err := s.opts.Start(cfg)
	if err != nil {
		return badRequest("Load snapshot error: Failed to restore from snapshot: %s", err)
	}
	s.vm = vm
	s.res.machine.TrackDirtyPages = a.track
	if sn, ok := vm.(SnapshotInstance); ok {
		cpus, mem := sn.Shape()
		s.res.machine.VCPUCount, s.res.machine.MemSizeMib = uint8(cpus), mem>>20
	}
	s.startMetricsTicker()
	return nil
}

// bootConfigured reports whether a boot-specific resource was configured:
// Firecracker refuses to load a snapshot after any.
func (r *resources) bootConfigured() bool {
	return r.boot != nil || len(r.drives) > 0 || len(r.nets) > 0 || r.vsock != nil ||
		r.balloon != nil || r.machine != newResources().machine
}
