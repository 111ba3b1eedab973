package virtio

import (
	"fmt"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// Split virtqueue layout (virtio 1.2, 2.7).
const (
	descSize     = 16 // struct virtq_desc
	descAlign    = 16
	availAlign   = 2
	usedAlign    = 4
	ringHeader   = 4 // flags and idx, both 16 bits
	usedElemSize = 8 // struct virtq_used_elem
	eventSize    = 2 // used_event / avail_event (EVENT_IDX)
)

// QueueConfig is what the driver programs into a queue through the
// transport: its size and the guest physical addresses of its three areas.
type QueueConfig struct {
	Size      uint16
	DescTable uint64 // descriptor area
	AvailRing uint64 // driver area
	UsedRing  uint64 // device area
}

// Queue is one split virtqueue seen from the device side.
//
// Ownership: the transport calls Configure and Reset while the device is
// inactive; between the device's Activate and Reset only the device (its
// worker goroutine) calls the other methods. A Queue is not safe for
// concurrent use.
type Queue struct {
	maxSize  uint16
	mem      *guestmem.Memory
	cfg      QueueConfig
	ready    bool
	eventIdx bool
	indirect bool

	lastAvail     uint16 // next available-ring slot to consume
	nextUsed      uint16 // next used-ring slot to fill
	usedFlags     uint16 // the device's used-ring flags
	signalledUsed uint16 // nextUsed at the last notification decision
	unsignalled   uint32 // used elements since that decision
	notifyOff     bool   // NO_NOTIFY is set (without EVENT_IDX)

	scratch *DescriptorChain // markWritten's chain, while migrating
}

// NewQueue returns an unconfigured queue whose size the driver may set up
// to maxSize (a power of two, at most MaxQueueSize).
func NewQueue(maxSize uint16) (*Queue, error) {
	if !powerOfTwo(maxSize) || maxSize > MaxQueueSize {
		return nil, fmt.Errorf("%w: got %d", ErrQueueMaxSize, maxSize)
	}
	return &Queue{maxSize: maxSize}, nil
}

func powerOfTwo(n uint16) bool { return n != 0 && n&(n-1) == 0 }

// MaxSize is the largest size the driver may choose.
func (q *Queue) MaxSize() uint16 { return q.maxSize }

// Size is the configured size (0 when not ready).
func (q *Queue) Size() uint16 { return q.cfg.Size }

// Ready reports whether the queue was configured and may be used.
func (q *Queue) Ready() bool { return q.ready }

// Config returns the configuration the queue was set up with.
func (q *Queue) Config() QueueConfig { return q.cfg }

// EventIdx reports whether VIRTIO_F_EVENT_IDX is in effect.
func (q *Queue) EventIdx() bool { return q.eventIdx }

// Configure validates the driver's configuration against guest memory
// and makes the queue ready with fresh ring indices. features are the
// negotiated feature bits (EVENT_IDX and INDIRECT_DESC matter here).
// Errors wrap ErrBadQueue.
func (q *Queue) Configure(mem *guestmem.Memory, cfg QueueConfig, features uint64) error {
	q.Reset()
	if !powerOfTwo(cfg.Size) || cfg.Size > q.maxSize {
		return fmt.Errorf("%w: %w: size %d, maximum %d", ErrBadQueue, ErrQueueSize, cfg.Size, q.maxSize)
	}
	eventIdx := features&FeatureEventIdx != 0
	var event uint64
	if eventIdx {
		event = eventSize
	}
	n := uint64(cfg.Size)
	for _, a := range []struct {
		name       string
		gpa, align uint64
		len        uint64
	}{
		{"descriptor table", cfg.DescTable, descAlign, descSize * n},
		{"available ring", cfg.AvailRing, availAlign, ringHeader + 2*n + event},
		{"used ring", cfg.UsedRing, usedAlign, ringHeader + usedElemSize*n + event},
	} {
		if a.gpa%a.align != 0 {
			return fmt.Errorf("%w: %w: %s at %#x needs %d-byte alignment", ErrBadQueue, ErrQueueAlign, a.name, a.gpa, a.align)
		}
		if !mem.Contains(a.gpa, a.len) {
			return fmt.Errorf("%w: %w: %s at %#x+%#x", ErrBadQueue, ErrQueueRange, a.name, a.gpa, a.len)
		}
	}
	q.mem = mem
	q.cfg = cfg
	q.eventIdx = eventIdx
	q.indirect = features&FeatureIndirectDesc != 0
	q.ready = true
	return nil
}

// Reset forgets the configuration and the ring indices.
func (q *Queue) Reset() {
	*q = Queue{maxSize: q.maxSize}
}

// NewChain allocates a chain buffer able to hold any chain of this queue.
// Allocate one per request in flight when the device starts and reuse it:
// Pop and Next fill it without allocating.
func (q *Queue) NewChain() *DescriptorChain {
	return &DescriptorChain{descs: make([]descriptor, 0, q.maxSize)}
}

func (q *Queue) notReady() error {
	return fmt.Errorf("%w: %w", ErrBadQueue, ErrQueueNotReady)
}

// availIdx loads the driver's available index.
func (q *Queue) availIdx() (uint16, error) {
	idx, err := load16(q.mem, q.cfg.AvailRing+2)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadQueue, err)
	}
	return idx, nil
}

// pending returns how many chains the driver has made available.
func (q *Queue) pending() (uint16, error) {
	idx, err := q.availIdx()
	if err != nil {
		return 0, err
	}
	n := idx - q.lastAvail
	if n > q.cfg.Size {
		return 0, fmt.Errorf("%w: %w: index %d, device at %d, queue size %d", ErrBadQueue, ErrAvailIndex, idx, q.lastAvail, q.cfg.Size)
	}
	return n, nil
}

// Pop takes the next available chain into c and validates it. It returns
// false when the ring is empty. An error wrapping ErrBadChain means the
// chain was consumed but is malformed: c.Head() is valid and the device
// should fail the request. Any other error (wrapping ErrBadQueue) means the
// queue is unusable.
func (q *Queue) Pop(c *DescriptorChain) (bool, error) {
	if !q.ready {
		return false, q.notReady()
	}
	n, err := q.pending()
	if err != nil || n == 0 {
		return false, err
	}
	slot := uint64(q.lastAvail & (q.cfg.Size - 1))
	head, err := q.mem.Uint16(q.cfg.AvailRing + ringHeader + 2*slot)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrBadQueue, err)
	}
	q.lastAvail++
	if head >= q.cfg.Size {
		return false, fmt.Errorf("%w: %w: head %d, queue size %d", ErrBadQueue, ErrHeadIndex, head, q.cfg.Size)
	}
	return true, c.walk(q, head)
}

// UndoPop returns the chain most recently taken by Pop or Next to the
// available ring: the next Pop reads and validates it again. A device that
// cannot serve a request yet (rate limiting) uses it; call it at most once
// per successful Pop.
func (q *Queue) UndoPop() {
	if q.ready {
		q.lastAvail--
	}
}

// Next is Pop for the usual device loop. While chains are available it
// turns driver notifications off; when the ring is empty it turns them
// back on and looks once more, so a device that consumes chains with Next
// until it returns false, then waits for a notification, never misses one.
func (q *Queue) Next(c *DescriptorChain) (bool, error) {
	ok, err := q.Pop(c)
	if ok || err != nil {
		if ok && !q.eventIdx && !q.notifyOff {
			q.notifyOff = true
			err2 := q.publishUsed()
			if err == nil {
				err = err2
			}
		}
		return ok, err
	}
	more, err := q.EnableNotification()
	if err != nil || !more {
		return false, err
	}
	return q.Pop(c)
}

// EnableNotification asks the driver to notify when it makes more chains
// available, then reports whether some already are. With EVENT_IDX it
// publishes avail_event; otherwise it clears VIRTQ_USED_F_NO_NOTIFY.
func (q *Queue) EnableNotification() (bool, error) {
	if !q.ready {
		return false, q.notReady()
	}
	if q.eventIdx {
		gpa := q.cfg.UsedRing + ringHeader + usedElemSize*uint64(q.cfg.Size)
		if err := store16(q.mem, gpa, q.lastAvail); err != nil {
			return false, fmt.Errorf("%w: %w", ErrBadQueue, err)
		}
	} else {
		q.notifyOff = false
		if err := q.publishUsed(); err != nil {
			return false, err
		}
	}
	// Both stores above are full barriers: the index read below cannot be
	// satisfied before the driver can see the request for notifications.
	n, err := q.pending()
	return n > 0, err
}

// DisableNotification asks the driver not to notify (a hint: it may still).
// Without EVENT_IDX it sets VIRTQ_USED_F_NO_NOTIFY; with EVENT_IDX leaving
// avail_event behind has the same effect and nothing is written.
func (q *Queue) DisableNotification() error {
	if !q.ready {
		return q.notReady()
	}
	if q.eventIdx || q.notifyOff {
		return nil
	}
	q.notifyOff = true
	return q.publishUsed()
}

// publishUsed stores the used ring's flags and index word.
func (q *Queue) publishUsed() error {
	q.usedFlags = 0
	if q.notifyOff {
		q.usedFlags = UsedFlagNoNotify
	}
	if err := store32(q.mem, q.cfg.UsedRing, uint32(q.usedFlags)|uint32(q.nextUsed)<<16); err != nil {
		return fmt.Errorf("%w: %w", ErrBadQueue, err)
	}
	return nil
}

// AddUsed returns the chain with the given head to the driver, n being the
// number of bytes the device wrote into it, and publishes the used index.
func (q *Queue) AddUsed(head uint16, n uint32) error {
	if !q.ready {
		return q.notReady()
	}
	if head >= q.cfg.Size {
		return fmt.Errorf("%w: %w: head %d, queue size %d", ErrBadQueue, ErrUsedHead, head, q.cfg.Size)
	}
	slot := uint64(q.nextUsed & (q.cfg.Size - 1))
	elem := q.cfg.UsedRing + ringHeader + usedElemSize*slot
	if err := q.mem.PutUint64(elem, uint64(head)|uint64(n)<<32); err != nil {
		return fmt.Errorf("%w: %w", ErrBadQueue, err)
	}
	q.nextUsed++
	q.unsignalled++
	if q.mem.DirtyTracking() {
		q.markWritten(head)
	}
	return q.publishUsed()
}

// markWritten records the device-writable buffers of the chain at head
// as written by the device, for live migration (guestmem.MarkDirty): the
// device has finished writing them, whichever way it did. The chain is
// walked again from the descriptor table, which the driver must not
// change while the chain is in use; a chain that no longer validates has
// nothing to record. The scratch chain is allocated on first use.
func (q *Queue) markWritten(head uint16) {
	if q.scratch == nil {
		q.scratch = q.NewChain()
	}
	c := q.scratch
	if c.walk(q, head) != nil {
		return
	}
	for _, d := range c.descs[c.nRead:] {
		q.mem.MarkDirty(d.addr, uint64(d.len))
	}
}

// NeedsNotify decides whether the driver wants a used-buffer notification
// for the elements added since the last call: never when none were added,
// otherwise per used_event (EVENT_IDX) or VIRTQ_AVAIL_F_NO_INTERRUPT. Call
// it after each batch of AddUsed, then interrupt if it returns true.
func (q *Queue) NeedsNotify() (bool, error) {
	if !q.ready {
		return false, q.notReady()
	}
	if q.unsignalled == 0 {
		return false, nil
	}
	// More than 2^16 elements since the last decision would defeat the
	// 16-bit index arithmetic: notify unconditionally then.
	force := q.unsignalled >= 1<<16
	old, cur := q.signalledUsed, q.nextUsed
	q.signalledUsed, q.unsignalled = cur, 0
	if q.eventIdx {
		ev, err := load16(q.mem, q.cfg.AvailRing+ringHeader+2*uint64(q.cfg.Size))
		if err != nil {
			return false, fmt.Errorf("%w: %w", ErrBadQueue, err)
		}
		return force || NeedEvent(ev, cur, old), nil
	}
	flags, err := load16(q.mem, q.cfg.AvailRing)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrBadQueue, err)
	}
	return force || flags&AvailFlagNoInterrupt == 0, nil
}

// NeedEvent is the EVENT_IDX test (vring_need_event): whether moving an
// index from old to cur crossed the other side's event index ev, in 16-bit
// wrapping arithmetic.
func NeedEvent(ev, cur, old uint16) bool {
	return cur-ev-1 < cur-old
}

// QueueState is the part of a queue's state that is not in guest memory.
type QueueState struct {
	Config    QueueConfig
	Ready     bool
	Features  uint64
	LastAvail uint16
	NextUsed  uint16
}

// State returns the queue's device-side state (for snapshots).
func (q *Queue) State() QueueState {
	var f uint64
	if q.eventIdx {
		f |= FeatureEventIdx
	}
	if q.indirect {
		f |= FeatureIndirectDesc
	}
	return QueueState{Config: q.cfg, Ready: q.ready, Features: f, LastAvail: q.lastAvail, NextUsed: q.nextUsed}
}

// Restore configures the queue from a saved state.
func (q *Queue) Restore(mem *guestmem.Memory, s QueueState) error {
	if !s.Ready {
		q.Reset()
		return nil
	}
	if err := q.Configure(mem, s.Config, s.Features); err != nil {
		return err
	}
	q.lastAvail, q.nextUsed, q.signalledUsed = s.LastAvail, s.NextUsed, s.NextUsed
	return nil
}
