package balloon

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

// Activate maps the transport's queues to their roles and starts the
// worker that serves them.
func (d *Device) Activate(ctx virtio.ActivateContext) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.worker != nil {
		return virtio.ErrAlreadyActive
	}
	w := work{log: ctx.Log, irq: ctx.Interrupt}
	if w.log == nil {
		w.log = slog.Default()
	}
	var events []*hostos.EventFD
	next := 0
	for role := range numRoles {
		switch {
		case role == roleStats && ctx.Features&FeatureStatsVQ == 0,
			role == roleReport && ctx.Features&FeatureReporting == 0:
			continue
		}
		if next >= len(ctx.Queues) || next >= len(ctx.Notify) {
			return fmt.Errorf("%w: balloon %s queue (transport has %d)", virtio.ErrMissingQueue, roleNames[role], len(ctx.Queues))
		}
		q := ctx.Queues[next]
		if !q.Ready() {
			return fmt.Errorf("%w: balloon %s queue %d", virtio.ErrMissingQueue, roleNames[role], next)
		}
		w.queues[role] = q
		w.chains[role] = q.NewChain()
		events = append(events, ctx.Notify[next])
		next++
	}
	wake, err := hostos.NewEventFD()
	if err != nil {
		return fmt.Errorf("balloon: %w", err)
	}
	events = append(events, wake)
	w.pager = newPager(ctx.Mem)
	w.slices = make([][]byte, 0, QueueSize)
	saved := d.carry
	fresh := d.resume(&w)

	d.wmu.Lock()
	d.w = w
	d.wmu.Unlock()
	worker, err := virtio.StartWorker(virtio.WorkerConfig{
		Name:   "virtio-balloon",
		Events: events,
		Handle: d.handle,
		Failed: func(err error) {
			d.counters.failures.Add(1)
			ctx.NeedsReset(err)
		},
		Log: w.log,
	})
	if err != nil {
		wake.Close()
		d.carry = saved
		return err
	}
	d.worker, d.wake, d.irq = worker, wake, ctx.Interrupt
	// Look at every ring once even if the driver's first notifications
	// were drained by a reset.
	wake.Signal()
	if fresh && d.actual != 0 {
		d.actual = 0
		d.notifyChange()
	}
	return nil
}

// carry is what a Reset keeps for the next Activate. The transport's
// Quiesce (for a snapshot) is a Reset followed by an Activate on the same
// queues, which must not lose the statistics buffer the device holds or
// the record of which 4 KiB pages of huge host pages are in the balloon;
// a snapshot restore hands them over the same way (Restore).
type carry struct {
	statsHeld bool
	statsHead uint16
	statsSeen time.Time
	ballooned [][]uint64
}

// resume takes the carried state into a new activation, as far as the
// queues show the same driver session (d.mu is held): the statistics
// queue must have exactly one buffer outstanding, the one the device
// holds, and the inflate and deflate queues must not be fresh. It reports
// whether they are: a driver that starts over, with an empty balloon.
func (d *Device) resume(w *work) bool {
	c := d.carry
	d.carry = carry{}
	if q := w.queues[roleStats]; q != nil && c.statsHeld && c.statsHead < q.Size() {
		if st := q.State(); st.LastAvail-st.NextUsed == 1 {
			w.statsHeld, w.statsHead, w.statsSeen = true, c.statsHead, c.statsSeen
			if w.statsSeen.IsZero() {
				w.statsSeen = d.now()
			}
		}
	}
	in, de := w.queues[roleInflate].State(), w.queues[roleDeflate].State()
	fresh := in.LastAvail == 0 && in.NextUsed == 0 && de.LastAvail == 0 && de.NextUsed == 0
	if !fresh && w.pager.ballooned != nil && len(c.ballooned) == len(w.pager.ballooned) {
		for i, b := range c.ballooned {
			if len(b) == len(w.pager.ballooned[i]) {
				copy(w.pager.ballooned[i], b)
			}
		}
	}
	return fresh
}

// Reset stops the worker and forgets the queues, keeping what the next
// Activate may need (see carry).
func (d *Device) Reset() {
	d.mu.Lock()
	worker, wake := d.worker, d.wake
	d.worker, d.wake, d.irq = nil, nil, nil
	d.mu.Unlock()
	if worker == nil {
		return
	}
	worker.Stop()
	wake.Close()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wmu.Lock()
	defer d.wmu.Unlock()
	w := &d.w
	d.carry = carry{statsHeld: w.statsHeld, statsHead: w.statsHead, statsSeen: w.statsSeen}
	if w.pager != nil {
		d.carry.ballooned = w.pager.ballooned
	}
	d.w = work{}
}
