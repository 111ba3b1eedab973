package vmm

import "fmt"

// diffState follows a machine's memory against its last snapshot, for
// Diff snapshots (Config.TrackDirtyPages), on top of the dirty page
// tracking of dirty.go. Collected pages are kept in pending, which is
// cleared only once a snapshot holding them is committed, so a failed
// snapshot loses nothing.
type diffState struct {
	// base is the memory ID of the snapshot the memory was last equal
	// to (saved, or restored from); empty when there is none.
	base    string
	pending DirtyBitmap
}

// startDiffTracking turns on dirty page tracking when the configuration
// asks for it. It runs before the irqchip exists (registering a slot
// again is cheap then) and before any device or vCPU can write.
func (m *Machine) startDiffTracking(from *restoreFrom) error {
	if !m.cfg.TrackDirtyPages {
		return nil
	}
	d := &diffState{pending: m.NewDirtyBitmap()}
	if from != nil && from.snap.Files != nil {
		d.base = from.snap.Files.MemoryID
	}
	if err := m.StartDirtyTracking(); err != nil {
		return err
	}
	m.diff = d
	return nil
}

// checkDiffTracking drops the Diff bookkeeping when dirty page tracking
// was turned off under it (StopDirtyTracking by another user of
// dirty.go): pages written since are unknown, so no Diff can be trusted
// any more; Full snapshots still work.
func (m *Machine) checkDiffTracking() {
	if m.diff != nil && !m.DirtyTracking() {
		m.log.Warn("dirty page tracking was turned off; Diff snapshots are no longer possible")
		m.diff = nil
	}
}

// collectDirty drains the pages dirtied since the last collection into
// pending. It does nothing without tracking.
func (m *Machine) collectDirty() error {
	if m.diff == nil {
		return nil
	}
	if err := m.CollectDirty(m.diff.pending); err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	return nil
}

// committed records that memory ID id now holds every pending page.
func (d *diffState) committed(id string) {
	if d == nil {
		return
	}
	d.base = id
	for _, p := range d.pending {
		clear(p)
	}
}
