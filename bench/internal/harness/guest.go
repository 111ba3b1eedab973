package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vireo-vmm/vireo/internal/guestimg"
	"github.com/vireo-vmm/vireo/internal/initramfs"
)

// BootMarker is what the default initramfs's /init prints on the serial
// console once user space runs.
const BootMarker = initramfs.BootMarker

// ShellPrompt is the default guest's shell prompt, printed once it waits
// for input.
const ShellPrompt = "~ # "

// Guest is what both VMMs are asked to boot.
type Guest struct {
	Kernel  string
	Initrd  string // "" for none
	Cmdline string
	MemMiB  int
	CPUs    int
}

// DefaultGuest is the project's guest: its kernel, the default busybox
// initramfs (built and cached on first use) and command line, where
// kernel, initrd or cmdline are empty.
func DefaultGuest(kernel, initrd, cmdline string, memMiB, cpus int) (Guest, error) {
	g := Guest{Kernel: kernel, Initrd: initrd, Cmdline: cmdline, MemMiB: memMiB, CPUs: cpus}
	var err error
	if g.Kernel == "" {
		if g.Kernel, err = DefaultKernel(); err != nil {
			return g, err
		}
	}
	if g.Initrd == "" {
		if g.Initrd, err = guestimg.DefaultInitrd(); err != nil {
			return g, fmt.Errorf("%w: default initramfs: %w", ErrMissing, err)
		}
	}
	if g.Cmdline == "" {
		g.Cmdline = guestimg.DefaultCmdline()
	}
	if err := CheckFile(g.Kernel, "guest kernel", "build it with `make guest`, or pass -kernel"); err != nil {
		return g, err
	}
	if err := CheckFile(g.Initrd, "initramfs", "pass -initrd"); err != nil {
		return g, err
	}
	return g, nil
}

// DefaultKernel is the kernel `vireo run` boots by default, else the
// prebuilt one beside the repository.
func DefaultKernel() (string, error) {
	k, err := guestimg.DefaultKernel()
	if err == nil {
		return k, nil
	}
	if d := guestimg.SharedGuestDir(); d != "" {
		return filepath.Join(d, "vmlinux"), nil
	}
	return "", fmt.Errorf("%w: %w", ErrMissing, err)
}

// CheckFile requires a readable regular file; what names it and hint
// says how to get it in the error.
func CheckFile(path, what, hint string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w (%s)", ErrMissing, what, path, err, hint)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrMissing, what, path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: %s %s is not a regular file", ErrMissing, what, path)
	}
	return nil
}

// QEMUMachine is QEMU's configuration on this kind of host: microvm, KVM,
// a CPU model the nested KVM accepts, no default devices, the serial
// port on stdio.
var QEMUMachine = []string{
	"-M", "microvm", "-enable-kvm", "-cpu", "qemu64,+xsaveerptr,+tsc-deadline",
	"-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
}

// QEMUArgv is the command line that boots g in QEMU, with extra
// arguments at the end.
func QEMUArgv(qemu string, g Guest, extra ...string) []string {
	a := append([]string{qemu}, QEMUMachine...)
	a = append(a,
		"-m", strconv.Itoa(g.MemMiB)+"M",
		"-smp", strconv.Itoa(g.CPUs),
		"-kernel", g.Kernel,
		"-append", g.Cmdline,
		"-no-reboot",
	)
	if g.Initrd != "" {
		a = append(a, "-initrd", g.Initrd)
	}
	return append(a, extra...)
}

// VireoArgv is the `vireo run` command line that boots g with the
// console on stdio, with extra arguments at the end.
func VireoArgv(vireo string, g Guest, extra ...string) []string {
	a := []string{vireo, "run",
		"--kernel", g.Kernel,
		"--memory", strconv.Itoa(g.MemMiB) + "M",
		"--cpus", strconv.Itoa(g.CPUs),
		"--cmdline", g.Cmdline,
		"--console", "stdio",
		"--no-reboot",
	}
	if g.Initrd != "" {
		a = append(a, "--initrd", g.Initrd)
	}
	return append(a, extra...)
}

// FindProgram resolves a program name or path; hint says how to get it.
func FindProgram(name, hint string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w: %s not found (%s)", ErrMissing, name, hint)
		}
		return "", fmt.Errorf("%w: %s: %w (%s)", ErrMissing, name, err, hint)
	}
	return p, nil
}

// BuildVireo builds ./cmd/vireo (run from the repository root) into dir
// and returns the binary's path.
func BuildVireo(dir string) (string, error) {
	bin := filepath.Join(dir, "vireo")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/vireo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building vireo: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// RequireKVM fails with ErrMissing when /dev/kvm cannot be opened.
func RequireKVM() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMissing, err)
	}
	return f.Close()
}
