package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vireo-vmm/vireo/internal/api/fcapi"
	"github.com/vireo-vmm/vireo/internal/console"
	"github.com/vireo-vmm/vireo/internal/guestimg"
	"github.com/vireo-vmm/vireo/internal/metrics"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// vmFlags describe the VM on the command line; the Firecracker API and
// config file describe it instead, so they do not mix.
var vmFlags = []string{"kernel", "initrd", "cmdline", "cpus", "memory", "cpu-template", "no-reboot"}

// cmdRunFirecracker runs a VM the Firecracker way: configured through the
// REST API on --api-sock, or from --config-file and booted at once. The
// process ends when the VM does (a guest reboot ends it too) or on
// SIGINT, SIGTERM or SIGHUP.
func cmdRunFirecracker(f *runFlags, level slog.Level, stderr io.Writer) error {
	for _, name := range vmFlags {
		if f.set[name] {
			return usageError{fmt.Sprintf("--%s cannot be combined with --api-sock or --config-file, which describe the VM", name)}
		}
	}
	logs := fcapi.NewLogSwitch(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	log := slog.New(logs)
	slog.SetDefault(log)

	con, err := console.Open(f.console)
	if err != nil {
		return usageError{err.Error()}
	}
	defer con.Close()

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer cancel()

	vm := &fcRun{ctx: ctx, quit: cancel, con: con, log: log, done: make(chan struct{})}
	stopMetrics, err := serveMetrics(f.metricsAddr, vm.metrics, log) // metrics.go
	if err != nil {
		return err
	}
	defer stopMetrics()
	srv := fcapi.New(fcapi.Options{
		ID:             f.instanceID,
		Version:        version,
		DefaultCmdline: guestimg.DefaultCmdline(),
		Start:          vm.start,
		Logs:           logs,
		Log:            log,
	})
	defer srv.Close()

	if f.configFile != "" {
		data, err := os.ReadFile(f.configFile)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := srv.LoadConfig(data); err != nil {
			return fmt.Errorf("config file %s: %w", f.configFile, err)
		}
	}
	if f.apiSock != "" {
		l, err := fcapi.Listen(f.apiSock)
		if err != nil {
			return err
		}
		go func() {
			if err := srv.Serve(l); err != nil {
				log.Error("API server stopped", "err", err)
			}
		}()
	}
	if f.configFile != "" {
		if err := srv.StartInstance(); err != nil {
			return err
		}
	}
	select {
	case <-vm.done:
		return vm.err
	case <-ctx.Done():
		if vm.started.Load() {
			<-vm.done // Run sees the same context and returns
			return vm.err
		}
		return nil
	}
}

// fcRun starts the VM for the API server and reports when it ends.
type fcRun struct {
	ctx     context.Context
	quit    func()
	con     *console.Console
	log     *slog.Logger
	started atomic.Bool
	ctl     atomic.Pointer[vmm.Controller] // set once the VM is being built
	done    chan struct{}                  // closed when a started VM has ended
	err     error                          // Run's result, valid after done
}

// metrics reads the VM's counters: none before it starts.
func (r *fcRun) metrics() metrics.Snapshot {
	if c := r.ctl.Load(); c != nil {
		return c.Metrics()
	}
	return metrics.Snapshot{}
}

// start builds the controller and runs it in the background, returning
// once the guest runs, or Run's error if it ended before that.
func (r *fcRun) start(cfg vmm.Config) (fcapi.Instance, error) {
	cfg.Console = r.con.Output()
	cfg.Log = r.log
	cfg.Start = processStart
	ctl, err := vmm.NewController(cfg)
	if err != nil {
		return nil, err
	}
	r.ctl.Store(ctl)
	running := make(chan struct{})
	var once sync.Once
	cancel := ctl.Subscribe(func(ev vmm.Event) {
		if ev.Kind == vmm.EventStart {
			once.Do(func() { close(running) })
		}
	})
	defer cancel()
	ended := make(chan error, 1)
	go func() { ended <- ctl.Run(r.ctx) }()
	select {
	case <-running:
	case err := <-ended:
		if err == nil {
			err = errors.New("the VM stopped while starting")
		}
		return nil, err
	}
	r.started.Store(true)
	r.con.Start(ctl.ConsoleInput, r.quit)
	go func() {
		r.err = <-ended
		close(r.done)
	}()
	return fcapi.ControllerInstance(ctl), nil
}
