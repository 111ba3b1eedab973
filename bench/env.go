package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/vireo-vmm/vireo/internal/guestimg"
)

// env is everything a run needs besides the options.
type env struct {
	vireo, qemu vmm
	guest       guestSpec // the Linux guest
	tiny        guestSpec // the tiny PVH guest
	host        hostInfo
	tmp         string // removed at the end
}

// prepare resolves the VMM binaries and guest images, failing with a clear
// message for anything missing, and writes the tiny guest to a temporary
// directory.
func prepare(o *options) (*env, error) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return nil, fmt.Errorf("%w: /dev/kvm: %w", ErrMissing, err)
	}
	vireoPath, err := findProgram(o.vireo, "build it with `make build`")
	if err != nil {
		return nil, err
	}
	qemuPath, err := findProgram(o.qemu, "install the qemu-system-x86 package (`make deps`)")
	if err != nil {
		return nil, err
	}
	e := &env{vireo: vireoVMM(vireoPath), qemu: qemuVMM(qemuPath)}

	kernel := o.kernel
	if kernel == "" {
		if kernel, err = defaultKernel(); err != nil {
			return nil, err
		}
	}
	if err := checkFile(kernel, "guest kernel", "build it with `make guest`, or pass -kernel"); err != nil {
		return nil, err
	}
	initrd := o.initrd
	if initrd == "" && (o.benches.boot || o.benches.mem) {
		if initrd, err = guestimg.DefaultInitrd(); err != nil {
			return nil, fmt.Errorf("%w: default initramfs: %w", ErrMissing, err)
		}
	}
	if initrd != "" {
		if err := checkFile(initrd, "initramfs", "pass -initrd"); err != nil {
			return nil, err
		}
	}
	cmdline := o.cmdline
	if cmdline == "" {
		cmdline = guestimg.DefaultCmdline()
	}
	e.guest = guestSpec{Kernel: kernel, Initrd: initrd, Cmdline: cmdline, MemMiB: o.memMiB, CPUs: o.cpus}

	if e.tmp, err = os.MkdirTemp("", "vireo-bench-"); err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	tinyPath, err := writeTinyELF(e.tmp)
	if err != nil {
		os.RemoveAll(e.tmp)
		return nil, err
	}
	e.tiny = guestSpec{Kernel: tinyPath, Cmdline: "console=ttyS0", MemMiB: o.memMiB, CPUs: o.cpus}
	e.host = readHostInfo(vireoPath, qemuPath)
	return e, nil
}

// defaultKernel is the kernel `vireo run` boots by default, else the
// prebuilt one beside the repository.
func defaultKernel() (string, error) {
	k, err := guestimg.DefaultKernel()
	if err == nil {
		return k, nil
	}
	if d := guestimg.SharedGuestDir(); d != "" {
		return filepath.Join(d, "vmlinux"), nil
	}
	return "", fmt.Errorf("%w: %w", ErrMissing, err)
}

// findProgram resolves a program name or path; hint says how to get it.
func findProgram(name, hint string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w: %s not found: %s", ErrMissing, name, hint)
		}
		return "", fmt.Errorf("%w: %s: %w (%s)", ErrMissing, name, err, hint)
	}
	return p, nil
}

// checkFile requires a readable regular file.
func checkFile(p, what, hint string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w (%s)", ErrMissing, what, p, err, hint)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrMissing, what, p, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: %s %s is not a regular file", ErrMissing, what, p)
	}
	return nil
}
