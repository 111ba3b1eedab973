package console

import (
	"errors"
	"fmt"
	"runtime/debug"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/rtsyscall"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

// worker is the goroutine serving one activation of the device. It waits
// on the queues' notify eventfds, the Enqueue wake-up and the channels'
// sockets in one poll, so that input from a socket is read only when the
// guest can take it and output is written only when the socket can take
// it: backpressure both ways with no buffering beyond the staging areas.
type worker struct {
	stop *hostos.EventFD
	done chan struct{}
}

// run is the worker goroutine. A failure or a panic marks the device as
// needing a reset (through failed) and ends the worker; the VMM carries on.
func (d *Device) run(w *worker, failed func(error)) {
	defer close(w.done)
	if failed == nil {
		failed = func(error) {}
	}
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("virtio-console worker panicked; the device needs a reset", "panic", r, "stack", string(debug.Stack()))
			failed(fmt.Errorf("%w: virtio-console: %v", virtio.ErrDevicePanic, r))
		}
	}()
	if err := d.loop(w.stop); err != nil {
		failed(fmt.Errorf("virtio-console: %w", err))
	}
}

// loop serves the device until stop is signalled or serving fails.
func (d *Device) loop(stop *hostos.EventFD) error {
	for {
		d.svc.Lock()
		err := d.service()
		n := d.pollSet(stop)
		wait := d.gateWait()
		d.svc.Unlock()
		if err != nil {
			return err
		}
		var ts *unix.Timespec
		if wait >= 0 {
			d.timeout = unix.NsecToTimespec(int64(wait))
			ts = &d.timeout
		}
		if _, err := rtsyscall.Ppoll(d.pfds[:n], ts); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("waiting for events: %w", err)
		}
		if d.pfds[0].Revents != 0 {
			return nil
		}
		d.svc.Lock()
		err = d.polled(n)
		d.svc.Unlock()
		if err != nil {
			return err
		}
	}
}

// pollSet fills d.pfds: the stop eventfd, the wake-up and notify
// eventfds, then each channel's listener and client. It returns the
// number of entries.
func (d *Device) pollSet(stop *hostos.EventFD) int {
	d.pfds[0] = unix.PollFd{Fd: int32(stop.FD()), Events: unix.POLLIN}
	n := 1
	for _, e := range d.events {
		d.pfds[n] = unix.PollFd{Fd: int32(e.FD()), Events: unix.POLLIN}
		n++
	}
	for _, p := range d.socks {
		lfd, cfd, ev := p.sock.pollFDs(p.guestOpen && p.rx != nil)
		d.pfds[n] = unix.PollFd{Fd: int32(lfd), Events: unix.POLLIN}
		d.pfds[n+1] = unix.PollFd{Fd: int32(cfd), Events: ev}
		n += 2
	}
	return n
}

// polled consumes what poll reported: it drains the eventfds that fired
// and lets each socket accept clients and note hang-ups. The work itself
// is done by the next service pass.
func (d *Device) polled(n int) error {
	for i, e := range d.events {
		if d.pfds[1+i].Revents == 0 {
			continue
		}
		if _, err := e.Drain(); err != nil {
			return fmt.Errorf("draining an eventfd: %w", err)
		}
	}
	base := 1 + len(d.events)
	for i, p := range d.socks {
		if j := base + 2*i; j+1 < n {
			p.sock.polled(d.pfds[j].Revents, d.pfds[j+1].Revents)
		}
	}
	return nil
}
