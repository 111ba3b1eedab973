package net

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/rtsyscall"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

const (
	// budget is how many packets one direction moves before the worker
	// looks at the other direction and its events again.
	budget = 64
	// maxRxChains bounds the receive buffers one packet may be merged
	// into. Linux sizes mergeable buffers so a 64 KiB packet takes at
	// most ~44 of them.
	maxRxChains = 64
)

// Poll slots of a pair worker.
const (
	slotStop = iota
	slotWake
	slotRxNotify
	slotTxNotify
	slotTapRead
	slotTapWrite
	numSlots
)

// pair is one receive/transmit queue pair and its TAP queue, served by one
// worker goroutine. Everything but the atomics it reads from dev belongs to
// that goroutine between start and stop.
type pair struct {
	idx      int
	dev      *Device
	stats    *counters
	log      *slog.Logger
	irq      virtio.Interrupt
	features uint64
	mrg      bool

	rxq, txq           *virtio.Queue
	rxNotify, txNotify *hostos.EventFD
	fd, fd0            int // this pair's TAP queue, and queue 0's
	stopFD, wake       *hostos.EventFD
	done               chan struct{}
	started            bool
	broken             bool        // the worker failed; it is not restarted
	failed             func(error) // the activation's NeedsReset

	rxChains []*virtio.DescriptorChain
	txChain  *virtio.DescriptorChain
	rxBuf    []byte
	rxNext   []byte       // a packet read after rxBuf's that could not be merged into it
	txHdr    [hdrLen]byte // the validated copy of a transmitted header
	txBufs   [][]byte     // the header and the frame's guest memory
	txIov    []unix.Iovec // writev's iovec array

	rxLen     int  // length of a received packet still waiting for buffers
	nextLen   int  // length of the packet in rxNext (0: none)
	rxStalled bool // the driver has no receive buffers: wait for its notification
	txBlocked bool // the TAP refused a write: wait until it is writable
	tapFailed bool // the TAP queue reported an error: stop using it

	pfd  [numSlots]unix.PollFd
	zero unix.Timespec
}

// newPair prepares pair i for the activation described by ctx.
func (d *Device) newPair(i int, ctx virtio.ActivateContext) (*pair, error) {
	p := &pair{
		idx:      i,
		dev:      d,
		stats:    &d.stats[i],
		log:      d.log,
		irq:      ctx.Interrupt,
		features: ctx.Features,
		mrg:      ctx.Features&FeatureMrgRxbuf != 0,
		rxq:      ctx.Queues[2*i],
		txq:      ctx.Queues[2*i+1],
		rxNotify: ctx.Notify[2*i],
		txNotify: ctx.Notify[2*i+1],
		fd:       d.tap.FD(i),
		fd0:      d.tap.FD(0),
		rxBuf:    make([]byte, maxPacketLen),
		rxNext:   make([]byte, maxPacketLen),
		txBufs:   make([][]byte, 0, QueueSize+1),
		txIov:    make([]unix.Iovec, QueueSize+1),
	}
	n := 1
	if p.mrg {
		n = maxRxChains
	}
	for range n {
		p.rxChains = append(p.rxChains, p.rxq.NewChain())
	}
	p.txChain = p.txq.NewChain()
	var err error
	if p.stopFD, err = hostos.NewEventFD(); err != nil {
		return nil, fmt.Errorf("net: pair %d: %w", i, err)
	}
	if p.wake, err = hostos.NewEventFD(); err != nil {
		p.stopFD.Close()
		return nil, fmt.Errorf("net: pair %d: %w", i, err)
	}
	p.pfd[slotStop] = unix.PollFd{Fd: int32(p.stopFD.FD()), Events: unix.POLLIN}
	p.pfd[slotWake] = unix.PollFd{Fd: int32(p.wake.FD()), Events: unix.POLLIN}
	p.pfd[slotRxNotify] = unix.PollFd{Fd: int32(p.rxNotify.FD()), Events: unix.POLLIN}
	p.pfd[slotTxNotify] = unix.PollFd{Fd: int32(p.txNotify.FD()), Events: unix.POLLIN}
	return p, nil
}

// start runs the worker; failed is called once if it fails or panics.
func (p *pair) start(failed func(error)) {
	p.failed = failed
	p.done = make(chan struct{})
	p.started = true
	go p.run(failed)
}

// halt ends the worker and waits for it; start may run it again. A
// worker that failed stays failed (p.broken).
func (p *pair) halt() {
	if !p.started {
		return
	}
	p.stopFD.Signal()
	<-p.done
	p.stopFD.Drain()
	p.started = false
}

// resume restarts a halted worker unless it had failed.
func (p *pair) resume() {
	if !p.started && !p.broken && p.failed != nil {
		p.start(p.failed)
	}
}

// stop ends the worker for good and releases its eventfds.
func (p *pair) stop() {
	p.halt()
	p.stopFD.Close()
	p.wake.Close()
}

func (p *pair) run(failed func(error)) {
	defer close(p.done)
	defer func() {
		if r := recover(); r != nil {
			p.broken = true
			p.log.Error("virtio-net worker panicked; the device needs a reset", "pair", p.idx, "panic", r, "stack", string(debug.Stack()))
			failed(fmt.Errorf("%w: virtio-net pair %d: %v", virtio.ErrDevicePanic, p.idx, r))
		}
	}()
	if err := p.loop(); err != nil {
		p.broken = true
		failed(fmt.Errorf("virtio-net pair %d: %w", p.idx, err))
	}
}

// active reports whether the driver has enabled this pair.
func (p *pair) active() bool { return p.idx < int(p.dev.activePairs.Load()) }

// loop waits for queue notifications and TAP readiness and moves packets
// until stopped or until a queue breaks.
func (p *pair) loop() error {
	busy := true // look at both rings once at the start
	for {
		p.arm()
		ts := (*unix.Timespec)(nil)
		if busy {
			ts = &p.zero
		}
		if _, err := rtsyscall.Ppoll(p.pfd[:], ts); err != nil && err != unix.EINTR {
			return fmt.Errorf("net: waiting for events: %w", err)
		}
		if p.pfd[slotStop].Revents != 0 {
			return nil
		}
		if err := p.events(); err != nil {
			return err
		}
		active := p.active()
		busy = false
		if !p.txBlocked {
			more, err := p.transmit(active)
			if err != nil {
				return err
			}
			busy = more
		}
		if !p.rxStalled || !active {
			more, err := p.receive(active)
			if err != nil {
				return err
			}
			busy = busy || more
		}
		if err := p.irq.Used(p.txq); err != nil {
			return err
		}
		if err := p.irq.Used(p.rxq); err != nil {
			return err
		}
	}
}

// arm sets the TAP poll slots: readable while the pair is active and no
// received packet is waiting for buffers (backpressure), writable while a
// write is blocked.
func (p *pair) arm() {
	for i := range p.pfd {
		p.pfd[i].Revents = 0
	}
	p.pfd[slotTapRead] = unix.PollFd{Fd: -1}
	if p.active() && !p.tapFailed && p.rxLen == 0 && p.nextLen == 0 {
		p.pfd[slotTapRead] = unix.PollFd{Fd: int32(p.fd), Events: unix.POLLIN}
	}
	p.pfd[slotTapWrite] = unix.PollFd{Fd: -1}
	if p.txBlocked {
		p.pfd[slotTapWrite] = unix.PollFd{Fd: int32(p.txFD(p.active())), Events: unix.POLLOUT}
	}
}

// events consumes what ppoll reported.
func (p *pair) events() error {
	for slot, e := range [...]*hostos.EventFD{slotWake: p.wake, slotRxNotify: p.rxNotify, slotTxNotify: p.txNotify} {
		if e == nil || p.pfd[slot].Revents == 0 {
			continue
		}
		if _, err := e.Drain(); err != nil {
			return fmt.Errorf("net: draining an eventfd: %w", err)
		}
	}
	if p.pfd[slotRxNotify].Revents != 0 {
		p.rxStalled = false
	}
	if p.pfd[slotTapWrite].Revents != 0 {
		p.txBlocked = false
	}
	// A TAP queue reports an error when it is detached (the driver just
	// disabled this pair) or when the interface was deleted.
	if p.pfd[slotTapRead].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 && p.active() {
		p.tapFailure(errors.New("the TAP queue reported an error (interface deleted?)"))
	}
	return nil
}

// tapFailure stops using the TAP queue and shows the link down.
func (p *pair) tapFailure(err error) {
	if p.tapFailed {
		return
	}
	p.tapFailed = true
	p.log.Error("virtio-net: TAP queue failed; link down", "net", p.dev.cfg.ID, "tap", p.dev.tap.Name(), "pair", p.idx, "err", err)
	if p.dev.linkUp.Swap(false) && p.features&FeatureStatus != 0 {
		if err := p.irq.ConfigChanged(); err != nil {
			p.log.Error("virtio-net: signalling the link change", "err", err)
		}
	}
}

// txFD is the TAP queue this pair transmits on: its own while active,
// queue 0's while the driver drains a disabled pair.
func (p *pair) txFD(active bool) int {
	if active {
		return p.fd
	}
	return p.fd0
}
