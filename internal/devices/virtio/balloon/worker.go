package balloon

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

const (
	// maxPFNsPerBuffer bounds the PFNs taken from one buffer (Linux sends
	// at most 256); the rest of a larger buffer is ignored.
	maxPFNsPerBuffer = 1 << 16
	// workBudget bounds the PFNs, buffers and reported ranges served in
	// one handler call (an empty buffer counts as one), so that a guest
	// refilling the queues as fast as they drain cannot keep the worker
	// from noticing a reset: with work left over the handler asks to be
	// called again at once, after the worker has checked for a stop.
	workBudget = 1 << 17
	// again is the delay the handler asks for when it has work left.
	again = time.Nanosecond
)

// handle serves every queue (a notification on one often means work on
// another: the driver's deflate follows its inflate) and the statistics
// timer. It runs on the worker goroutine.
func (d *Device) handle(int) (time.Duration, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	w := &d.w
	budget := workBudget
	before := w.pager.discarded
	for _, role := range [...]int{roleInflate, roleDeflate} {
		if err := d.servePFNs(role, &budget); err != nil {
			return 0, err
		}
	}
	d.counters.discarded.Add(w.pager.discarded - before)
	if w.queues[roleStats] != nil {
		if err := d.serveStats(&budget); err != nil {
			return 0, err
		}
	}
	if w.queues[roleReport] != nil {
		before := w.pager.discarded
		err := d.serveReports(&budget)
		d.counters.reported.Add(w.pager.discarded - before)
		if err != nil {
			return 0, err
		}
	}
	if err := w.pager.takeErr(); err != nil && !w.warned {
		w.warned = true
		w.log.Warn("virtio-balloon: the host refused to take back guest pages; they stay resident", "err", err)
	}
	wait, err := d.statsTick()
	if err != nil {
		return 0, err
	}
	if budget <= 0 {
		return again, nil
	}
	return wait, nil
}

// next pops the next chain of a queue, returning malformed ones to the
// driver unused; ok is false when the ring is empty.
func (w *work) next(role int) (bool, error) {
	q, c := w.queues[role], w.chains[role]
	for {
		ok, err := q.Next(c)
		if errors.Is(err, virtio.ErrBadChain) {
			w.log.Debug("virtio-balloon: dropping a malformed request", "queue", roleNames[role], "err", err)
			if err := q.AddUsed(c.Head(), 0); err != nil {
				return false, err
			}
			continue
		}
		return ok, err
	}
}

// servePFNs serves the inflate or deflate queue: each buffer is an array
// of le32 page frame numbers of 4 KiB pages.
func (d *Device) servePFNs(role int, budget *int) error {
	w := &d.w
	q, c := w.queues[role], w.chains[role]
	for *budget > 0 {
		ok, err := w.next(role)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		good, bad := w.takePFNs(c, role == roleInflate)
		*budget -= max(1, int(good+bad))
		if role == roleInflate {
			d.counters.inflates.Inc()
			d.counters.inflated.Add(good)
		} else {
			d.counters.deflates.Inc()
			d.counters.deflated.Add(good)
		}
		if bad != 0 {
			d.counters.invalid.Add(bad)
			if !w.warned {
				w.warned = true
				w.log.Warn("virtio-balloon: guest named pages outside its RAM; ignored", "queue", roleNames[role], "pages", bad)
			}
		}
		if err := q.AddUsed(c.Head(), 0); err != nil {
			return err
		}
	}
	return w.irq.Used(q)
}

// takePFNs reads a buffer's PFNs and inflates or deflates each page. A
// trailing partial PFN is ignored. It returns how many pages were valid
// and how many lay outside guest RAM.
func (w *work) takePFNs(c *virtio.DescriptorChain, inflate bool) (good, bad uint64) {
	left := uint64(maxPFNsPerBuffer)
	for left > 0 {
		p := w.buf[:min(uint64(len(w.buf)), 4*left)]
		n, _ := c.Read(p)
		for i := 0; i+4 <= n; i += 4 {
			pfn := binary.LittleEndian.Uint32(p[i:])
			var ok bool
			if inflate {
				ok = w.pager.inflate(pfn)
			} else {
				ok = w.pager.deflate(pfn)
			}
			if ok {
				good++
			} else {
				bad++
			}
		}
		left -= uint64(n / 4)
		if n < len(p) {
			break
		}
	}
	if inflate {
		w.pager.flush()
	}
	return good, bad
}

// serveStats takes the driver's statistics buffer, records the values
// and keeps the buffer until the next request is due (statsTick).
func (d *Device) serveStats(budget *int) error {
	w := &d.w
	q, c := w.queues[roleStats], w.chains[roleStats]
	for ; *budget > 0; *budget-- {
		ok, err := w.next(roleStats)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if w.statsHeld {
			// A second buffer: the older one goes back unread.
			if err := q.AddUsed(w.statsHead, 0); err != nil {
				return err
			}
		}
		now := d.now()
		n, _ := c.ReadAt(w.buf[:maxStats*statSize], 0)
		s := Stats{Updated: now}
		parseStats(w.buf[:n], &s)
		d.smu.Lock()
		d.stats = s
		d.smu.Unlock()
		d.counters.statsUpdates.Add(1)
		w.statsHeld, w.statsHead, w.statsSeen = true, c.Head(), now
	}
	return w.irq.Used(q)
}

// statsTick hands the statistics buffer back once the polling interval
// has passed since it arrived, which asks the driver for new values. It
// returns how long until that is due (0: nothing to wait for).
func (d *Device) statsTick() (time.Duration, error) {
	w := &d.w
	if !w.statsHeld {
		return 0, nil
	}
	d.smu.Lock()
	interval := d.interval
	d.smu.Unlock()
	if interval <= 0 {
		return 0, nil
	}
	if wait := w.statsSeen.Add(interval).Sub(d.now()); wait > 0 {
		return wait, nil
	}
	q := w.queues[roleStats]
	w.statsHeld = false
	if err := q.AddUsed(w.statsHead, 0); err != nil {
		return 0, err
	}
	return 0, w.irq.Used(q)
}

// serveReports serves the free page reporting queue: each buffer names a
// range of free guest memory (the descriptors' addresses and lengths;
// their contents do not matter), which goes back to the host before the
// buffer returns to the driver, since the guest may reuse the memory as
// soon as it has the buffer back.
func (d *Device) serveReports(budget *int) error {
	w := &d.w
	q, c := w.queues[roleReport], w.chains[roleReport]
	for *budget > 0 {
		ok, err := w.next(roleReport)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		bufs, err := c.WritableSlices(w.slices[:0], 0, c.WritableLen())
		if err == nil {
			for _, b := range bufs {
				gpa, ok := gpaOf(w.pager.regions, b)
				if !ok || !w.pager.report(gpa, uint64(len(b))) {
					d.counters.invalid.Add(1)
				}
			}
		}
		*budget -= max(1, len(bufs))
		clear(bufs) // do not keep guest memory reachable from the worker
		w.slices = bufs[:0]
		if err := q.AddUsed(c.Head(), 0); err != nil {
			return err
		}
	}
	return w.irq.Used(q)
}
