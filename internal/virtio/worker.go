package virtio

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/rtsyscall"
)

// TimerEvent is the event index passed to a worker's handler when the
// delay it asked for has elapsed.
const TimerEvent = -1

// WorkerConfig describes a worker goroutine.
type WorkerConfig struct {
	// Name identifies the worker in logs ("virtio-rng").
	Name string
	// Events are the eventfds the worker waits on, usually the queues'
	// notify eventfds. Each is drained before Handle is called with its
	// index.
	Events []*hostos.EventFD
	// Handle serves event i (an index into Events) or, with TimerEvent,
	// the expiry of the delay it last asked for. It returns the delay after
	// which it wants a TimerEvent (0: none); each answer replaces the
	// previous one.
	Handle func(i int) (time.Duration, error)
	// Failed is called once, on the worker goroutine, when Handle returns
	// an error or panics; the worker then exits. It usually is the
	// ActivateContext's NeedsReset.
	Failed func(error)
	// Log receives the panic report (default slog.Default()).
	Log *slog.Logger
}

// Worker is a goroutine that waits on a device's eventfds and calls its
// handler. A failing or panicking handler marks the device broken (through
// Failed) and ends the worker; the VMM carries on.
type Worker struct {
	stop *hostos.EventFD
	done chan struct{}
	once sync.Once
}

// StartWorker starts a worker.
func StartWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Handle == nil || cfg.Failed == nil {
		return nil, ErrWorkerNoHandler
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	stop, err := hostos.NewEventFD()
	if err != nil {
		return nil, fmt.Errorf("virtio: %s worker: %w", cfg.Name, err)
	}
	w := &Worker{stop: stop, done: make(chan struct{})}
	go w.run(cfg)
	return w, nil
}

// Stop asks the worker to exit and waits until it has. It is safe to call
// more than once and after the worker ended by itself.
func (w *Worker) Stop() {
	w.once.Do(func() {
		w.stop.Signal()
		<-w.done
		w.stop.Close()
	})
}

// Done is closed when the worker goroutine has exited.
func (w *Worker) Done() <-chan struct{} { return w.done }

func (w *Worker) run(cfg WorkerConfig) {
	defer close(w.done)
	defer func() {
		if r := recover(); r != nil {
			cfg.Log.Error("virtio worker panicked; the device needs a reset", "worker", cfg.Name, "panic", r, "stack", string(debug.Stack()))
			cfg.Failed(fmt.Errorf("%w: %s: %v", ErrDevicePanic, cfg.Name, r))
		}
	}()
	if err := w.loop(cfg); err != nil {
		cfg.Failed(fmt.Errorf("%s: %w", cfg.Name, err))
	}
}

// loop polls the stop eventfd and the device's eventfds until stopped or
// until the handler fails.
func (w *Worker) loop(cfg WorkerConfig) error {
	fds := make([]unix.PollFd, 1+len(cfg.Events))
	fds[0] = unix.PollFd{Fd: int32(w.stop.FD()), Events: unix.POLLIN}
	for i, e := range cfg.Events {
		fds[i+1] = unix.PollFd{Fd: int32(e.FD()), Events: unix.POLLIN}
	}
	var deadline time.Time
	var ts unix.Timespec
	for {
		tsp := (*unix.Timespec)(nil)
		if !deadline.IsZero() {
			ts = unix.NsecToTimespec(max(int64(time.Until(deadline)), 0))
			tsp = &ts
		}
		if _, err := rtsyscall.Ppoll(fds, tsp); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("virtio: waiting for events: %w", err)
		}
		if fds[0].Revents != 0 {
			return nil
		}
		for i, e := range cfg.Events {
			if fds[i+1].Revents == 0 {
				continue
			}
			if _, err := e.Drain(); err != nil {
				return fmt.Errorf("virtio: draining event %d: %w", i, err)
			}
			d, err := cfg.Handle(i)
			if err != nil {
				return err
			}
			deadline = after(d)
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			deadline = time.Time{}
			d, err := cfg.Handle(TimerEvent)
			if err != nil {
				return err
			}
			deadline = after(d)
		}
	}
}

func after(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}
