package virtio

import "errors"

// The two classes of guest errors. Every error the queue returns for bad
// guest input wraps exactly one of them, plus a specific sentinel below.
var (
	// ErrBadChain: one request is malformed. The chain was consumed from
	// the available ring and its head index is valid: the device should
	// fail that request (for example AddUsed(head, 0)) and go on.
	ErrBadChain = errors.New("virtio: malformed descriptor chain")
	// ErrBadQueue: the ring itself is unusable (bad configuration, an
	// impossible available index, a head outside the queue). The device
	// should stop using the queue and ask for a reset (NEEDS_RESET).
	ErrBadQueue = errors.New("virtio: broken virtqueue")
)

// Specific causes.
var (
	ErrQueueSize       = errors.New("queue size is not a power of two between 1 and the device maximum")
	ErrQueueAlign      = errors.New("ring address is misaligned")
	ErrQueueRange      = errors.New("ring lies outside guest RAM")
	ErrQueueNotReady   = errors.New("queue is not ready")
	ErrAvailIndex      = errors.New("available index is more than a queue size ahead")
	ErrHeadIndex       = errors.New("chain head index is outside the queue")
	ErrUsedHead        = errors.New("used element head index is outside the queue")
	ErrDescIndex       = errors.New("next descriptor index is outside the table")
	ErrDescRange       = errors.New("descriptor buffer lies outside guest RAM")
	ErrDescOrder       = errors.New("device-readable descriptor after a device-writable one")
	ErrChainTooLong    = errors.New("chain is longer than the queue size (a loop?)")
	ErrIndirect        = errors.New("invalid indirect descriptor")
	ErrRingContention  = errors.New("ring word kept changing under the device")
	ErrDevicePanic     = errors.New("virtio: device worker panicked")
	ErrAlreadyActive   = errors.New("virtio: device is already active")
	ErrMissingQueue    = errors.New("virtio: a required queue is not ready")
	ErrRingMisaligned  = errors.New("ring field is misaligned in host memory")
	ErrQueueMaxSize    = errors.New("virtio: queue maximum size must be a power of two from 1 to 32768")
	ErrWorkerNoHandler = errors.New("virtio: worker needs a handler and a failure callback")
)
