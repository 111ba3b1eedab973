package blk

import (
	"sync"
	"time"
)

// logInterval is the shortest time between two log lines of one kind.
const logInterval = 5 * time.Second

// limiter lets one event through per logInterval and counts the others.
type limiter struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether an event at now may be logged and how many were
// suppressed since the last one that was.
func (l *limiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.next, l.suppressed = now.Add(logInterval), 0
	return true, n
}

// ioError logs a failed host I/O operation (rate-limited); the guest gets
// VIRTIO_BLK_S_IOERR and the VM carries on.
func (d *Device) ioError(op string, sector uint64, err error) {
	if ok, n := d.ioErrs.allow(time.Now()); ok {
		d.log.Error("virtio-blk: host I/O error; the guest gets an I/O error",
			"path", d.cfg.Path, "op", op, "sector", sector, "err", err, "suppressed", n)
	}
}

// badRequest counts and logs a request the guest should not have made
// (rate-limited, at debug level: a hostile guest cannot flood the log).
func (d *Device) badRequest(what string, err error) {
	d.stats.invalid.Inc()
	if ok, n := d.badReqs.allow(time.Now()); ok {
		d.log.Debug("virtio-blk: bad request: "+what, "err", err, "suppressed", n)
	}
}
