// Package vireo embeds a KVM virtual machine in a Go program.
//
//	vm, err := vireo.New(vireo.Config{CPUs: 2, MemoryMiB: 256, Console: os.Stdout})
//	if err != nil { ... }
//	if err := vm.Start(); err != nil { ... }
//	vm.Console().Write([]byte("uname -a\n"))
//	...
//	vm.Stop()
//	err = vm.Wait()
//
// A VM is driven by one controller goroutine that owns its state machine;
// every method here sends it a typed action, the same ones the CLI, QMP and
// the Firecracker-compatible API use. Actions that the current state does
// not allow (pausing a paused VM, resuming a running one) fail with an
// error wrapping ErrState.
package vireo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestimg"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// Config describes a VM. Zero values take the defaults noted.
type Config struct {
	// Kernel is a vmlinux (PVH) or bzImage path; "" boots the default guest
	// kernel (the guest build cache or $VIREO_KERNEL).
	Kernel string
	// Initrd is an initial RAM disk; with the default kernel, "" means the
	// default busybox initramfs.
	Initrd string
	// Cmdline is the kernel command line; "" means the host's default.
	Cmdline string
	// CPUs is the number of vCPUs (default 1).
	CPUs int
	// MemoryMiB is guest RAM in MiB (default 128).
	MemoryMiB int
	// HugePages is "", "off", "thp" or "hugetlbfs".
	HugePages string
	// Merge lets KSM merge identical guest pages.
	Merge bool
	// CPUTemplate names a CPU template ("" means host).
	CPUTemplate string
	// NoReboot ends the VM when the guest resets instead of rebooting it.
	NoReboot bool
	// Console receives the guest's serial console output (nil discards it).
	Console io.Writer
	// Logger receives the VMM's logs (nil: slog.Default()).
	Logger *slog.Logger
}

// State is a VM's lifecycle state.
type State string

// Lifecycle states.
const (
	StateCreated State = "created"
	StateRunning State = "running"
	StatePaused  State = "paused"
	StateStopped State = "stopped"
)

// Event is a lifecycle event: "START", "STOP" (paused), "RESUME", "RESET",
// "POWERDOWN" or "SHUTDOWN". Guest is true when the guest caused it.
type Event struct {
	Kind   string
	Time   time.Time
	Guest  bool
	Reason string
}

// ErrState is wrapped by errors for actions the VM's state does not allow.
var ErrState = vmm.ErrState

// ErrNotStarted is returned by actions on a VM that was never started.
var ErrNotStarted = errors.New("vireo: VM not started")

// VM is one virtual machine.
type VM struct {
	ctl     *vmm.Controller
	started bool
	mu      sync.Mutex
	done    chan struct{}
	err     error
	cancel  context.CancelFunc
}

// New validates cfg, resolves defaults and opens /dev/kvm. The VM does not
// run until Start.
func New(cfg Config) (*VM, error) {
	c := vmm.Config{
		Kernel: cfg.Kernel, Initrd: cfg.Initrd, Cmdline: cfg.Cmdline,
		CPUs: cfg.CPUs, MemoryBytes: uint64(cfg.MemoryMiB) << 20,
		HugePages: cfg.HugePages, Merge: cfg.Merge, CPUTemplate: cfg.CPUTemplate,
		NoReboot: cfg.NoReboot, Console: cfg.Console, Log: cfg.Logger, Start: time.Now(),
	}
	if c.CPUs == 0 {
		c.CPUs = 1
	}
	if cfg.MemoryMiB == 0 {
		c.MemoryBytes = 128 << 20
	}
	var err error
	if c.Kernel == "" {
		if c.Kernel, err = guestimg.DefaultKernel(); err != nil {
			return nil, err
		}
		if c.Initrd == "" {
			if c.Initrd, err = guestimg.DefaultInitrd(); err != nil {
				return nil, err
			}
		}
	}
	if c.Cmdline == "" {
		c.Cmdline = guestimg.DefaultCmdline()
	}
	ctl, err := vmm.NewController(c)
	if err != nil {
		return nil, err
	}
	return &VM{ctl: ctl, done: make(chan struct{})}, nil
}

// Start boots the VM in the background and returns once its vCPUs run, or
// with the error that kept it from booting.
func (vm *VM) Start() error {
	vm.mu.Lock()
	if vm.started {
		vm.mu.Unlock()
		return fmt.Errorf("vireo: VM already started: %w", ErrState)
	}
	vm.started = true
	vm.mu.Unlock()

	running := make(chan struct{}, 1)
	cancelSub := vm.ctl.Subscribe(func(e vmm.Event) {
		if e.Kind == vmm.EventStart {
			select {
			case running <- struct{}{}:
			default:
			}
		}
	})
	defer cancelSub()
	ctx, cancel := context.WithCancel(context.Background())
	vm.cancel = cancel
	go func() {
		vm.err = vm.ctl.Run(ctx)
		close(vm.done)
	}()
	select {
	case <-running:
		return nil
	case <-vm.done:
		if vm.err != nil {
			return vm.err
		}
		return errors.New("vireo: VM ended while starting")
	}
}

func (vm *VM) running() error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if !vm.started {
		return ErrNotStarted
	}
	select {
	case <-vm.done:
		return fmt.Errorf("vireo: VM has stopped: %w", ErrState)
	default:
	}
	return nil
}

// Pause stops all vCPUs.
func (vm *VM) Pause() error {
	if err := vm.running(); err != nil {
		return err
	}
	return vm.ctl.Pause()
}

// Resume lets a paused VM run again.
func (vm *VM) Resume() error {
	if err := vm.running(); err != nil {
		return err
	}
	return vm.ctl.Resume()
}

// Reset resets the VM as a hardware reset would.
func (vm *VM) Reset() error {
	if err := vm.running(); err != nil {
		return err
	}
	return vm.ctl.Reset()
}

// Powerdown asks the guest to shut down (Ctrl-Alt-Del on the keyboard
// controller until ACPI exists).
func (vm *VM) Powerdown() error {
	if err := vm.running(); err != nil {
		return err
	}
	return vm.ctl.Powerdown()
}

// Stop ends the VM now; Wait then returns nil.
func (vm *VM) Stop() error {
	if err := vm.running(); err != nil {
		return err
	}
	return vm.ctl.Stop()
}

// Wait blocks until the VM has ended and returns why it failed, or nil
// when it ended normally (guest power-off, reset under NoReboot, Stop).
func (vm *VM) Wait() error {
	vm.mu.Lock()
	started := vm.started
	vm.mu.Unlock()
	if !started {
		return ErrNotStarted
	}
	<-vm.done
	return vm.err
}

// Done is closed when the VM has ended.
func (vm *VM) Done() <-chan struct{} { return vm.done }

// State returns the VM's lifecycle state.
func (vm *VM) State() State {
	switch vm.ctl.State() {
	case vmm.StateRunning:
		return StateRunning
	case vmm.StatePaused:
		return StatePaused
	case vmm.StateStopped:
		return StateStopped
	}
	return StateCreated
}

// Subscribe calls fn for every lifecycle event until cancel is called. fn
// runs on the controller goroutine: keep it short and do not call the VM's
// methods from it.
func (vm *VM) Subscribe(fn func(Event)) (cancel func()) {
	return vm.ctl.Subscribe(func(e vmm.Event) {
		fn(Event{Kind: string(e.Kind), Time: e.Time, Guest: e.Guest, Reason: e.Reason})
	})
}

// Console returns a writer that types into the guest's serial console. A
// write blocks until the guest's UART has taken every byte or the VM ends.
func (vm *VM) Console() io.Writer { return consoleWriter{vm} }

type consoleWriter struct{ vm *VM }

func (w consoleWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := w.vm.ctl.ConsoleInput(p[n:])
		n += k
		if k == 0 {
			select {
			case <-w.vm.done:
				return n, io.ErrClosedPipe
			case <-time.After(time.Millisecond):
			}
		}
	}
	return n, nil
}

// Close stops a running VM and waits for it; it is safe to call on a VM
// that was never started or has ended.
func (vm *VM) Close() error {
	vm.mu.Lock()
	started := vm.started
	vm.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-vm.done:
	default:
		if vm.cancel != nil {
			vm.cancel()
		}
		<-vm.done
	}
	return nil
}
