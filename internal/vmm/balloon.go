package vmm

import (
	"errors"
	"fmt"
	"time"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/balloon"
)

// EventBalloonChange reports that the guest changed the balloon's actual
// size; Event.BalloonActual is the memory the guest has left, in bytes.
const EventBalloonChange EventKind = "BALLOON_CHANGE"

// ErrBalloonSize reports a balloon larger than guest memory.
var ErrBalloonSize = errors.New("balloon size exceeds guest memory")

// BalloonInfo describes the balloon for management APIs.
type BalloonInfo struct {
	// MemoryBytes is guest RAM.
	MemoryBytes uint64
	// TargetPages and ActualPages are the balloon's requested and actual
	// sizes in 4 KiB pages.
	TargetPages, ActualPages uint32
	// StatsInterval is the statistics polling interval (0: statistics
	// are not enabled).
	StatsInterval time.Duration
	// Stats are the guest's latest statistics.
	Stats balloon.Stats
	// Counters are the device's running totals.
	Counters balloon.Counters
}

// GuestBytes is the memory the guest has outside the balloon (QMP's
// query-balloon "actual").
func (b BalloonInfo) GuestBytes() uint64 {
	return b.MemoryBytes - min(b.MemoryBytes, uint64(b.ActualPages)*balloon.PageSize)
}

// balloonOp is what a balloon action does.
type balloonOp int

const (
	balloonQuery balloonOp = iota
	balloonSetTarget
	balloonSetInterval
)

// balloonRequest is a balloon action, applied by balloon on the
// controller goroutine.
type balloonRequest struct {
	op       balloonOp
	pages    uint32        // balloonSetTarget
	interval time.Duration // balloonSetInterval
	info     *BalloonInfo  // balloonQuery: filled in on success
}

// Balloon describes the balloon device; ErrNoBalloon while the VM has
// none (or is not running).
func (c *Controller) Balloon() (BalloonInfo, error) {
	var info BalloonInfo
	err := c.balloonDo(balloonRequest{op: balloonQuery, info: &info})
	return info, err
}

// BalloonBytes is the memory the guest has outside the balloon, in bytes
// (QMP's query-balloon "actual").
func (c *Controller) BalloonBytes() (uint64, error) {
	info, err := c.Balloon()
	if err != nil {
		return 0, err
	}
	return info.GuestBytes(), nil
}

// SetBalloonTarget asks the guest to shrink or grow to target bytes of
// memory, as QMP's balloon command does: the balloon's target becomes the
// rest of guest RAM. A target above guest RAM empties the balloon.
func (c *Controller) SetBalloonTarget(target uint64) error {
	return c.balloonDo(balloonRequest{op: balloonSetTarget, pages: balloonPagesFor(c.cfg.MemoryBytes, target)})
}

// balloonPagesFor is the balloon size, in pages, that leaves a guest with
// mem bytes of RAM target bytes.
func balloonPagesFor(mem, target uint64) uint32 {
	return uint32(min((mem-min(mem, target))/balloon.PageSize, 1<<32-1))
}

// SetBalloonSize sets the balloon's target size in bytes, as Firecracker's
// PATCH /balloon amount_mib does.
func (c *Controller) SetBalloonSize(size uint64) error {
	if size > c.cfg.MemoryBytes {
		return fmt.Errorf("%w: %d MiB asked of %d MiB", ErrBalloonSize, size>>20, c.cfg.MemoryBytes>>20)
	}
	return c.balloonDo(balloonRequest{op: balloonSetTarget, pages: uint32(min(size/balloon.PageSize, 1<<32-1))})
}

// SetBalloonStatsInterval changes how often the guest is asked for memory
// statistics; it fails when the balloon was created without them.
func (c *Controller) SetBalloonStatsInterval(d time.Duration) error {
	return c.balloonDo(balloonRequest{op: balloonSetInterval, interval: d})
}

// balloonDo runs a balloon request on the controller goroutine, which
// alone reads and writes c.cfg.Balloon.
func (c *Controller) balloonDo(r balloonRequest) error {
	if c.Machine() == nil || c.State() == StateStopped {
		return ErrNoBalloon
	}
	return c.Do(func(m *Machine) error { return c.balloon(m, r) })
}

// balloon applies a balloon action on the controller goroutine.
func (c *Controller) balloon(m *Machine, r balloonRequest) error {
	dev := m.balloon()
	if dev == nil {
		return ErrNoBalloon
	}
	switch r.op {
	case balloonQuery:
		*r.info = c.balloonInfo(dev)
		return nil
	case balloonSetTarget:
		pages := min(r.pages, m.memoryPages())
		if err := dev.SetTarget(pages); err != nil {
			return err
		}
		// A rebuilt machine (after a guest reset) keeps the target.
		cfg := *c.cfg.Balloon
		cfg.TargetPages = pages
		c.cfg.Balloon = &cfg
		return nil
	case balloonSetInterval:
		if err := dev.SetStatsInterval(r.interval); err != nil {
			return err
		}
		cfg := *c.cfg.Balloon
		cfg.StatsInterval = r.interval
		c.cfg.Balloon = &cfg
		return nil
	}
	return fmt.Errorf("vmm: unknown balloon operation %d", r.op)
}

// balloonInfo describes the balloon device dev.
func (c *Controller) balloonInfo(dev *balloon.Device) BalloonInfo {
	info := BalloonInfo{
		MemoryBytes: c.cfg.MemoryBytes, TargetPages: dev.Target(), ActualPages: dev.Actual(),
		Stats: dev.Stats(), Counters: dev.Counters(),
	}
	if dev.StatsEnabled() {
		info.StatsInterval = dev.StatsInterval()
	}
	return info
}

// balloonChanges is the channel that signals a change of the machine's
// balloon (nil without one: a select never takes it).
func (m *Machine) balloonChanges() <-chan struct{} {
	if b := m.balloon(); b != nil {
		return b.Changes()
	}
	return nil
}

// balloonChanged emits BALLOON_CHANGE on the controller goroutine.
func (c *Controller) balloonChanged(m *Machine) {
	dev := m.balloon()
	if dev == nil {
		return
	}
	info := BalloonInfo{MemoryBytes: c.cfg.MemoryBytes, ActualPages: dev.Actual()}
	c.publish(Event{Kind: EventBalloonChange, Time: time.Now(), Guest: true, BalloonActual: info.GuestBytes()})
}
