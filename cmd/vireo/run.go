package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vireo-vmm/vireo/internal/console"
	"github.com/vireo-vmm/vireo/internal/guestimg"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// processStart approximates the process start for boot-marker timestamps.
var processStart = time.Now()

func cmdRun(args []string, stdout, stderr io.Writer) error {
	f, err := parseRunFlags(args, stdout)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usageError{fmt.Sprintf("invalid --log-level %q", f.logLevel)}
	}
	if f.apiSock != "" || f.configFile != "" {
		return cmdRunFirecracker(f, level, stderr)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	cfg := vmm.Config{
		Kernel: f.kernel, Initrd: f.initrd, Cmdline: f.cmdline,
		CPUs: f.cpus, MemoryBytes: f.memory.bytes, HugePages: f.memory.hugePages, Merge: f.memory.merge,
		CPUTemplate: f.cpuTemplate, NoReboot: f.noReboot, Log: log, Start: processStart,
	}
	cfg.Devices = f.devices
	if f.incoming != "" {
		if err := incomingConfig(f); err != nil { // migrate.go
			return err
		}
	} else if f.restore != "" {
		if err := restoreConfig(&cfg, f); err != nil {
			return err
		}
	} else if err := bootConfig(&cfg, f); err != nil {
		return err
	}

	con, err := console.Open(f.console)
	if err != nil {
		return usageError{err.Error()}
	}
	defer con.Close()
	cfg.Console = con.Output()
	if con.Virtio() {
		useVirtioConsole(&cfg, f.cmdlineSet)
	}

	ctl, err := newController(cfg, f.incoming) // migrate.go
	if err != nil {
		return err
	}
	stopMetrics, err := serveMetrics(f.metricsAddr, ctl.Metrics, log) // metrics.go
	if err != nil {
		return err
	}
	defer stopMetrics()
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer cancel()
	con.Start(ctl.ConsoleInput, cancel)
	err = runWithQMP(ctx, ctl, f.qmp, log)
	con.Close()
	return err
}

func checkReadable(path, what string) error {
	st, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return fmt.Errorf("%s %s: no such file", what, path)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if st.IsDir() {
		return fmt.Errorf("%s %s: is a directory", what, path)
	}
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %s", what, strings.TrimPrefix(err.Error(), "open "))
	}
	fh.Close()
	return nil
}

// bootConfig completes cfg for a fresh boot: the default guest when no
// kernel is given, the default command line, and readable files.
func bootConfig(cfg *vmm.Config, f *runFlags) (err error) {
	if cfg.Kernel == "" {
		if cfg.Kernel, err = guestimg.DefaultKernel(); err != nil {
			return err
		}
		if cfg.Initrd == "" {
			if cfg.Initrd, err = guestimg.DefaultInitrd(); err != nil {
				return err
			}
		}
	}
	if !f.cmdlineSet {
		cfg.Cmdline = guestimg.DefaultCmdline()
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := checkReadable(cfg.Kernel, "kernel"); err != nil {
		return err
	}
	if cfg.Initrd != "" {
		return checkReadable(cfg.Initrd, "initrd")
	}
	return nil
}

// restoreConfig completes cfg for --restore: the snapshot holds the
// machine, so the flags that describe one are refused.
func restoreConfig(cfg *vmm.Config, f *runFlags) error {
	for _, name := range []string{"kernel", "initrd", "cmdline", "cpus", "memory", "cpu-template"} {
		if f.set[name] {
			return usageError{fmt.Sprintf("--%s cannot be combined with --restore: the snapshot holds the machine's configuration", name)}
		}
	}
	cfg.RestoreDir = f.restore
	return nil
}
