package vmm

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/vireo-vmm/vireo/internal/snapshot"
)

// Snapshots in Firecracker's layout: the caller names the state file
// (snapshot_path) and the memory file (mem_file_path) instead of a
// directory. The state file has the same encoding as a snapshot
// directory's "state"; the memory file holds guest RAM region after
// region, as a sparse file, followed by one footer page that carries the
// memory file's ID (snapshot_fc_mem.go). The state records that ID, so a
// state is never restored over the memory of another snapshot.
//
// Both files are written under temporary names in their directories,
// synced, and renamed over the targets, memory first: a VMM killed while
// writing leaves the previous snapshot whole. Only a kill between the two
// renames, a window of microseconds, pairs a new memory file with the old
// state, and restoring that pair fails on the ID instead of running a
// guest on the wrong memory.
//
// Diff snapshots (with TrackDirtyPages) save only the pages written since
// the previous snapshot of the machine, or since it was restored:
//
//   - if mem_file_path is the memory file of that previous snapshot (its
//     ID says so), the dirty pages are merged into a copy of it, and the
//     result replaces it: a complete memory file, ready to restore. This
//     is Firecracker's "rebase" workflow done by the VMM.
//   - if mem_file_path does not exist, it receives the dirty pages alone
//     at their offsets, with holes elsewhere: a diff layer, as Firecracker
//     writes one. It must be merged onto the previous snapshot's memory
//     file (copy its data blocks over the base, as Firecracker's
//     snapshot-editor "rebase" does) before it can be restored.
//   - any other existing file is refused.

// SnapshotFiles names a snapshot's state and memory files.
type SnapshotFiles struct {
	State  string
	Memory string
}

// SnapshotFileInfo is what a state written to explicit files records
// about its memory file.
type SnapshotFileInfo struct {
	// MemoryPath is where the memory file was written (absolute).
	MemoryPath string
	// MemoryID is the ID in the memory file's footer.
	MemoryID string
	// DiffBase, for a diff layer, is the ID of the memory file the layer
	// must be merged onto.
	DiffBase string `json:",omitempty"`
}

// Errors of snapshots to explicit files.
var (
	// ErrDiffUntracked: a Diff snapshot of a machine without dirty page tracking.
	ErrDiffUntracked = errors.New("diff snapshots need dirty page tracking")
	// ErrNoDiffBase: a Diff snapshot with no previous snapshot to be relative to.
	ErrNoDiffBase = errors.New("a diff snapshot needs a previous snapshot of this VM")
	// ErrMemoryMismatch: a memory file that does not belong to its state.
	ErrMemoryMismatch = errors.New("memory file does not belong to this snapshot")
)

// SnapshotToFiles saves the VM into files.State and files.Memory; with
// diff, only the pages written since the previous snapshot (see above).
// A running VM is paused for the time it takes and resumes afterwards; a
// paused VM stays paused.
func (c *Controller) SnapshotToFiles(files SnapshotFiles, diff bool) error {
	return c.Do(func(m *Machine) error {
		running := c.State() == StateRunning
		if running {
			if err := m.Pause(); err != nil {
				return err
			}
		}
		err := m.saveSnapshotFiles(files, diff)
		if running {
			if rerr := m.Resume(); err == nil {
				err = rerr
			}
		}
		return err
	})
}

// saveSnapshotFiles writes the paused machine to files.
func (m *Machine) saveSnapshotFiles(files SnapshotFiles, diff bool) (err error) {
	statePath, memPath, err := snapshotPaths(files)
	if err != nil {
		return err
	}
	m.checkDiffTracking()
	if diff {
		switch {
		case m.diff == nil:
			return fmt.Errorf("%w: %w", ErrSnapshot, ErrDiffUntracked)
		case m.diff.base == "":
			return fmt.Errorf("%w: %w (a full one, or the one it was restored from)", ErrSnapshot, ErrNoDiffBase)
		}
	}
	for _, t := range m.virtio.transports {
		t.Quiesce()
	}
	defer func() {
		for _, t := range m.virtio.transports {
			if rerr := t.Resume(); rerr != nil && err == nil {
				err = rerr
			}
		}
	}()
	snap, err := m.captureState()
	if err != nil {
		return err
	}
	// Pages dirtied up to now move into pending; they leave it only once
	// a snapshot holding them is committed.
	if err := m.collectDirty(); err != nil {
		return err
	}
	id := newMemoryID()
	info := &SnapshotFileInfo{MemoryPath: memPath, MemoryID: id}
	var w *memoryWrite
	if diff {
		w, err = m.writeDiffMemory(memPath, id)
	} else {
		w, err = m.writeFullMemory(memPath, id)
	}
	if err != nil {
		return err
	}
	info.DiffBase = w.diffBase
	snap.Memory, snap.Files = w.regions, info
	// Memory first, then the state that names it (see above).
	if err := w.commit(); err != nil {
		return err
	}
	if err := writeStateFile(statePath, snap); err != nil {
		w.rollback()
		return err
	}
	w.finish()
	m.diff.committed(id)
	sweepTemps(memPath)
	sweepTemps(statePath)
	return nil
}

// snapshotPaths makes both paths absolute and checks that they differ.
func snapshotPaths(files SnapshotFiles) (state, mem string, err error) {
	if files.State == "" || files.Memory == "" {
		return "", "", fmt.Errorf("%w: both a state file and a memory file path are needed", ErrSnapshot)
	}
	if state, err = filepath.Abs(files.State); err == nil {
		mem, err = filepath.Abs(files.Memory)
	}
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	if state == mem {
		return "", "", fmt.Errorf("%w: the state and memory files are the same file %s", ErrSnapshot, state)
	}
	for _, p := range []string{state, mem} {
		if st, err := os.Stat(p); err == nil && !st.Mode().IsRegular() {
			return "", "", fmt.Errorf("%w: %s exists and is not a regular file", ErrSnapshot, p)
		}
	}
	return state, mem, nil
}

// writeStateFile commits snap at path: a temporary file in the same
// directory, fsync, rename, fsync of the directory.
func writeStateFile(path string, snap *Snapshot) error {
	dir := filepath.Dir(path)
	tmp, err := createTemp(path)
	if err != nil {
		return fmt.Errorf("%w: state file: %v", ErrSnapshot, err)
	}
	defer os.Remove(tmp.Name())
	err = snapshot.Encode(tmp, snap)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("%w: writing state file %s: %v", ErrSnapshot, path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable; a failure only weakens
// durability across a host crash, so it is not reported.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// LoadSnapshotFiles reads and checks a snapshot written to explicit
// files, and opens the memory file for the restored machine to map. A
// state from a snapshot directory loads too, with its memory file named
// here.
func LoadSnapshotFiles(files SnapshotFiles) (*Snapshot, *os.File, error) {
	f, err := os.Open(files.State)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: state file: %v", ErrSnapshot, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%w: state file %s is not a regular file", ErrSnapshot, files.State)
	}
	var snap Snapshot
	if err := snapshot.Decode(f, &snap); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", files.State, err)
	}
	if err := snap.check(); err != nil {
		return nil, nil, err
	}
	mf, err := openMemoryFile(files.Memory, &snap)
	if err != nil {
		return nil, nil, err
	}
	return &snap, mf, nil
}

// loadRestore loads the snapshot cfg restores from: a directory or
// explicit files.
func loadRestore(cfg *Config) (*Snapshot, *os.File, error) {
	start := time.Now()
	var snap *Snapshot
	var mem *os.File
	var err error
	if cfg.RestoreFiles != nil {
		snap, mem, err = LoadSnapshotFiles(*cfg.RestoreFiles)
	} else {
		snap, mem, err = LoadSnapshot(cfg.RestoreDir)
	}
	if err == nil {
		logger(cfg).Debug("snapshot loaded", "took", time.Since(start))
	}
	return snap, mem, err
}

func logger(cfg *Config) *slog.Logger {
	if cfg.Log != nil {
		return cfg.Log
	}
	return slog.Default()
}

// logStarted records, at debug level, how long building the machine took
// and when its vCPUs were let run: relative to the process start, and as
// wall-clock microseconds, which tools that started the process compare
// with their own clock.
func (m *Machine) logStarted(build time.Duration) {
	now := time.Now()
	if m.cfg.Start.IsZero() {
		m.log.Debug("vCPUs running", "build", build, "at_unix_us", now.UnixMicro())
		return
	}
	m.log.Debug("vCPUs running", "build", build, "since_start", now.Sub(m.cfg.Start), "at_unix_us", now.UnixMicro())
}

// logSince records, at debug level, how long a step of a restore took.
func (m *Machine) logSince(what string, start time.Time) {
	m.log.Debug(what, "took", time.Since(start))
}
