// Package rng is the virtio entropy device (virtio 1.2, section 5.4): one
// queue of device-writable buffers that it fills from the host's
// cryptographic random source, optionally rate-limited by a token bucket.
package rng

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vireo-vmm/vireo/internal/metrics"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

const (
	// QueueSize is the request queue's maximum size.
	QueueSize = 256
	// chunk is how many bytes are drawn from the source at a time.
	chunk = 4096
	// maxPerRequest bounds the bytes given for one buffer, so one huge
	// buffer cannot monopolise the worker.
	maxPerRequest = 64 << 10
	features      = virtio.FeatureVersion1 | virtio.FeatureEventIdx | virtio.FeatureIndirectDesc
)

// Device is a virtio-rng device. It implements virtio.Device.
type Device struct {
	cfg Config
	src io.Reader
	now func() time.Time

	mu     sync.Mutex // guards worker
	worker *virtio.Worker

	requests, bytes metrics.Counter // served for the device's lifetime

	// Owned by the worker between Activate and Reset.
	q      *virtio.Queue
	chain  *virtio.DescriptorChain
	irq    virtio.Interrupt
	log    *slog.Logger
	bucket bucket
	buf    []byte
}

// New returns an inactive entropy device.
func New(cfg Config) *Device {
	src := cfg.Source
	if src == nil {
		src = rand.Reader
	}
	return &Device{cfg: cfg, src: src, now: time.Now, buf: make([]byte, chunk)}
}

// Type is virtio.IDRNG.
func (d *Device) Type() virtio.DeviceID { return virtio.IDRNG }

// Features offers VERSION_1, EVENT_IDX and INDIRECT_DESC; the entropy
// device has no features of its own.
func (d *Device) Features() uint64 { return features }

// QueueMaxSizes is one request queue.
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{QueueSize} }

// ReadConfig reads zeros: the device has no configuration space.
func (d *Device) ReadConfig(_ uint64, data []byte) { clear(data) }

// WriteConfig ignores the write.
func (d *Device) WriteConfig(uint64, []byte) {}

// Activate starts the worker that serves the request queue.
func (d *Device) Activate(ctx virtio.ActivateContext) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.worker != nil {
		return virtio.ErrAlreadyActive
	}
	if len(ctx.Queues) < 1 || len(ctx.Notify) < 1 || !ctx.Queues[0].Ready() {
		return fmt.Errorf("%w: rng request queue", virtio.ErrMissingQueue)
	}
	d.q = ctx.Queues[0]
	if d.chain == nil {
		d.chain = d.q.NewChain()
	}
	d.irq = ctx.Interrupt
	d.log = ctx.Log
	if d.log == nil {
		d.log = slog.Default()
	}
	d.bucket = newBucket(d.cfg.Rate, d.cfg.Burst, d.now())
	w, err := virtio.StartWorker(virtio.WorkerConfig{
		Name:   "virtio-rng",
		Events: ctx.Notify[:1],
		Handle: d.handle,
		Failed: ctx.NeedsReset,
		Log:    d.log,
	})
	if err != nil {
		return err
	}
	d.worker = w
	// Look at the ring once even if the driver's first notification was
	// drained by a reset.
	ctx.Notify[0].Signal()
	return nil
}

// Reset stops the worker and forgets the queue.
func (d *Device) Reset() {
	d.mu.Lock()
	w := d.worker
	d.worker = nil
	d.mu.Unlock()
	if w != nil {
		w.Stop()
	}
	d.q, d.irq = nil, nil
}

// handle serves the request queue; it runs on the worker goroutine.
func (d *Device) handle(int) (time.Duration, error) {
	wait, err := d.serve()
	if ierr := d.irq.Used(d.q); err == nil {
		err = ierr
	}
	return wait, err
}

// serve fills available buffers until the ring is empty or the rate limit
// is reached; it returns how long to wait in the latter case.
//
// Under a rate limit a request is filled whole (up to maxPerRequest) once
// the bucket holds enough for it, rather than in small pieces as tokens
// trickle in: fewer round trips, and guest drivers that mishandle partly
// filled buffers (Linux 6.1.192's virtio-rng loses track of its pending
// request after one) keep working. Only a buffer larger than the bucket is
// filled partly.
func (d *Device) serve() (time.Duration, error) {
	for {
		ok, err := d.q.Next(d.chain)
		if errors.Is(err, virtio.ErrBadChain) {
			d.log.Debug("virtio-rng: dropping a malformed request", "err", err)
			if err := d.q.AddUsed(d.chain.Head(), 0); err != nil {
				return 0, err
			}
			continue
		}
		if err != nil || !ok {
			return 0, err
		}
		want := d.bucket.clamp(min(d.chain.WritableLen(), maxPerRequest))
		if d.bucket.available(d.now()) < want {
			d.q.UndoPop()
			return d.bucket.waitFor(want), nil
		}
		d.bucket.take(want)
		for want > 0 {
			n := min(want, uint64(len(d.buf)))
			if _, err := io.ReadFull(d.src, d.buf[:n]); err != nil {
				return 0, fmt.Errorf("virtio-rng: entropy source: %w", err)
			}
			if _, err := d.chain.Write(d.buf[:n]); err != nil {
				return 0, fmt.Errorf("virtio-rng: %w", err)
			}
			want -= n
		}
		d.requests.Inc()
		d.bytes.Add(uint64(d.chain.Written()))
		if err := d.q.AddUsed(d.chain.Head(), d.chain.Written()); err != nil {
			return 0, err
		}
	}
}

// Metrics returns the requests served and the bytes supplied.
func (d *Device) Metrics() metrics.RNG {
	return metrics.RNG{Requests: d.requests.Load(), Bytes: d.bytes.Load()}
}
