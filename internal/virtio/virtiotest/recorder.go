package virtiotest

import (
	"sync"
	"sync/atomic"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// Recorder is the transport side of a device's activation in tests: it
// counts the interrupts the device raises (only those the driver asks for,
// as a transport would signal them) and configuration changes, and keeps
// the first error the device reports through NeedsReset.
type Recorder struct {
	Interrupts atomic.Int32
	Configs    atomic.Int32

	mu       sync.Mutex
	resetErr error
}

// Used counts an interrupt when the queue's driver wants one.
func (r *Recorder) Used(q *virtio.Queue) error {
	if n, err := q.NeedsNotify(); err != nil || !n {
		return err
	}
	r.Interrupts.Add(1)
	return nil
}

// ConfigChanged counts a configuration change interrupt.
func (r *Recorder) ConfigChanged() error {
	r.Configs.Add(1)
	return nil
}

// NeedsReset records err, the device's report that it needs a reset;
// the first report is kept.
func (r *Recorder) NeedsReset(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.resetErr == nil {
		r.resetErr = err
	}
}

// Failure returns the first NeedsReset error, or nil.
func (r *Recorder) Failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resetErr
}
