package vmm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/kvm"
	"github.com/vireo-vmm/vireo/internal/snapshot"
	"github.com/vireo-vmm/vireo/internal/vcpu"
	"github.com/vireo-vmm/vireo/internal/virtio/mmio"
)

// A snapshot directory holds "state" (the snapshot format: the machine's
// configuration and every component's state) and the memory file it names.
// "state" is replaced atomically and written last, so a snapshot that is
// interrupted leaves the previous one intact.
const (
	stateFile    = "state"
	memoryPrefix = "memory-"
)

// Snapshot is a whole machine as plain data (guest RAM is in its own file).
type Snapshot struct {
	Vireo      string
	Config     SnapshotConfig
	MemoryFile string
	Memory     []guestmem.DumpRegion
	VCPUs      []*vcpu.State
	Platform   *PlatformState
	Virtio     []mmio.State
	// Files is set for a snapshot written to explicit paths, the way
	// Firecracker's API names them (snapshot_fc.go).
	Files *SnapshotFileInfo `json:",omitempty"`
}

// SnapshotConfig is the part of Config a restored machine is rebuilt from.
type SnapshotConfig struct {
	Kernel      string
	Initrd      string
	Cmdline     string
	CPUs        int
	MemoryBytes uint64
	HugePages   string
	Merge       bool
	CPUTemplate string
	Devices     Devices
}

// Version is recorded in snapshots; set by the CLI.
var Version = "dev"

// ErrSnapshot wraps snapshot and restore failures.
var ErrSnapshot = errors.New("snapshot")

func snapshotConfig(c *Config) SnapshotConfig {
	return SnapshotConfig{
		Kernel: c.Kernel, Initrd: c.Initrd, Cmdline: c.Cmdline, CPUs: c.CPUs,
		MemoryBytes: c.MemoryBytes, HugePages: c.HugePages, Merge: c.Merge,
		CPUTemplate: c.CPUTemplate, Devices: c.Devices,
	}
}

// saveSnapshot writes the paused machine into dir. Devices are quiesced
// (in-flight requests complete) and restarted afterwards.
func (m *Machine) saveSnapshot(dir string) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: %v", ErrSnapshot, err)
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
	var rnd [6]byte
	rand.Read(rnd[:])
	snap.MemoryFile = memoryPrefix + hex.EncodeToString(rnd[:])
	if snap.Memory, err = writeMemory(m.mem, filepath.Join(dir, snap.MemoryFile)); err != nil {
		return err
	}
	if err := writeState(dir, snap); err != nil {
		os.Remove(filepath.Join(dir, snap.MemoryFile))
		return err
	}
	// The new state is committed: older memory files are garbage.
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), memoryPrefix) && e.Name() != snap.MemoryFile {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	return nil
}

// captureState collects every component's state but guest RAM. The
// machine is paused and its virtio transports quiesced.
func (m *Machine) captureState() (snap *Snapshot, err error) {
	snap = &Snapshot{Vireo: Version, Config: snapshotConfig(&m.cfg)}
	if snap.Platform, err = m.savePlatform(); err != nil {
		return nil, err
	}
	if snap.VCPUs, err = m.saveVCPUs(); err != nil {
		return nil, err
	}
	for _, t := range m.virtio.transports {
		st, err := t.SaveState()
		if err != nil {
			return nil, err
		}
		snap.Virtio = append(snap.Virtio, st)
	}
	return snap, nil
}

func writeMemory(mem *guestmem.Memory, path string) ([]guestmem.DumpRegion, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	defer f.Close()
	regions, err := mem.Dump(f)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("%w: writing memory: %v", ErrSnapshot, err)
	}
	return regions, nil
}

// writeState commits snap as dir/state: a temporary file, fsync, rename,
// then fsync of the directory.
func writeState(dir string, snap *Snapshot) error {
	tmp, err := os.CreateTemp(dir, ".state-*")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSnapshot, err)
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
		err = os.Rename(tmp.Name(), filepath.Join(dir, stateFile))
	}
	if err != nil {
		return fmt.Errorf("%w: writing state: %v", ErrSnapshot, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// LoadSnapshot reads and checks a snapshot directory. The memory file is
// opened for the restored machine to map.
func LoadSnapshot(dir string) (*Snapshot, *os.File, error) {
	f, err := os.Open(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	defer f.Close()
	var snap Snapshot
	if err := snapshot.Decode(f, &snap); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	if err := snap.check(); err != nil {
		return nil, nil, err
	}
	if strings.ContainsAny(snap.MemoryFile, "/\x00") || !strings.HasPrefix(snap.MemoryFile, memoryPrefix) {
		return nil, nil, fmt.Errorf("%w: bad memory file name %q", ErrSnapshot, snap.MemoryFile)
	}
	mf, err := os.Open(filepath.Join(dir, snap.MemoryFile))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: memory file: %v", ErrSnapshot, err)
	}
	st, err := mf.Stat()
	if err != nil {
		mf.Close()
		return nil, nil, fmt.Errorf("%w: memory file: %v", ErrSnapshot, err)
	}
	for _, r := range snap.Memory {
		if r.Offset < 0 || uint64(r.Offset)+r.Size > uint64(st.Size()) {
			mf.Close()
			return nil, nil, fmt.Errorf("%w: memory file %s is truncated (%d bytes, region at %#x needs %d)", ErrSnapshot, snap.MemoryFile, st.Size(), r.GPA, uint64(r.Offset)+r.Size)
		}
	}
	return &snap, mf, nil
}

// check validates what a decoded snapshot says before anything is built.
func (s *Snapshot) check() error {
	c := s.Config
	switch {
	case c.CPUs < 1 || c.CPUs > maxVCPUs:
		return fmt.Errorf("%w: %d vCPUs", ErrSnapshot, c.CPUs)
	case len(s.VCPUs) != c.CPUs:
		return fmt.Errorf("%w: %d vCPU states for %d vCPUs", ErrSnapshot, len(s.VCPUs), c.CPUs)
	case s.Platform == nil:
		return fmt.Errorf("%w: no platform state", ErrSnapshot)
	}
	var total uint64
	for i, r := range s.Memory {
		if r.Size == 0 || r.Size > 1<<46 {
			return fmt.Errorf("%w: memory region %d has size %d", ErrSnapshot, i, r.Size)
		}
		total += r.Size
	}
	if total != c.MemoryBytes {
		return fmt.Errorf("%w: memory regions hold %d bytes, the VM has %d", ErrSnapshot, total, c.MemoryBytes)
	}
	for i, v := range s.VCPUs {
		if v == nil || v.ID != i {
			return fmt.Errorf("%w: vCPU state %d missing or misnumbered", ErrSnapshot, i)
		}
	}
	return nil
}

// restoreFrom is a snapshot being restored by newMachine.
type restoreFrom struct {
	snap *Snapshot
	mem  *os.File
	// memory, when set, is guest RAM already filled (by an incoming
	// migration) that the machine adopts instead of mapping mem.
	memory *guestmem.Memory
}

// configFromSnapshot returns the machine configuration for restoring snap,
// keeping base's host-side settings (console, logging, reboot policy).
func configFromSnapshot(base Config, snap *Snapshot) Config {
	c := base
	s := snap.Config
	c.Kernel, c.Initrd, c.Cmdline = s.Kernel, s.Initrd, s.Cmdline
	c.CPUs, c.MemoryBytes, c.HugePages, c.Merge = s.CPUs, s.MemoryBytes, s.HugePages, s.Merge
	c.CPUTemplate = s.CPUTemplate
	// Devices come from the snapshot; a kind given again on the host side
	// replaces the saved list, so backends (disk files, TAP names, socket
	// paths) can differ on restore. The device count must stay the same.
	saved, given := s.Devices, base.Devices
	if len(given.Disks) > 0 {
		saved.Disks = given.Disks
	}
	if len(given.Nets) > 0 {
		saved.Nets = given.Nets
	}
	if len(given.Channels) > 0 {
		saved.Channels = given.Channels
	}
	if given.Vsock != nil {
		saved.Vsock = given.Vsock
	}
	c.Devices = saved
	return c
}

// restore loads every component's state into a machine built from the
// snapshot's configuration: platform devices, then the vCPUs (created
// paused with their saved state), then the virtio transports, which
// restart their devices where they stopped.
func (m *Machine) restore(snap *Snapshot) error {
	defer m.logSince("machine state restored", time.Now()) // snapshot_fc.go
	if err := m.restorePlatform(snap.Platform); err != nil {
		return fmt.Errorf("%w: platform: %v", ErrSnapshot, err)
	}
	for i, st := range snap.VCPUs {
		st := st
		if err := m.spawnVCPU(i, func(c *kvm.VCPU) error { return vcpu.RestoreState(c, st) }); err != nil {
			return fmt.Errorf("%w: %v", ErrSnapshot, err)
		}
	}
	if len(snap.Virtio) != len(m.virtio.transports) {
		return fmt.Errorf("%w: %d virtio device states for %d devices", ErrSnapshot, len(snap.Virtio), len(m.virtio.transports))
	}
	for i, t := range m.virtio.transports {
		if err := t.RestoreState(snap.Virtio[i]); err != nil {
			return fmt.Errorf("%w: %v", ErrSnapshot, err)
		}
	}
	return nil
}

func (r *restoreFrom) close() {
	if r != nil && r.mem != nil {
		r.mem.Close()
		r.mem = nil
	}
	if r != nil && r.memory != nil { // not adopted by a machine
		r.memory.Close()
		r.memory = nil
	}
}

// Do runs fn on the controller goroutine with the current machine, in
// turn with every other action.
func (c *Controller) Do(fn func(*Machine) error) error {
	return c.send(action{kind: actDo, fn: fn})
}

// Snapshot saves the VM into dir. A running VM is paused for the time it
// takes and resumes afterwards; a paused VM stays paused.
func (c *Controller) Snapshot(dir string) error {
	return c.Do(func(m *Machine) error {
		running := c.State() == StateRunning
		if running {
			if err := m.Pause(); err != nil {
				return err
			}
		}
		err := m.saveSnapshot(dir)
		if running {
			if rerr := m.Resume(); err == nil {
				err = rerr
			}
		}
		return err
	})
}
