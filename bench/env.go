package main

import (
	"fmt"
	"os"

	"github.com/vireo-vmm/vireo/bench/internal/harness"
	"github.com/vireo-vmm/vireo/internal/guestimg"
)

// env is everything a run needs besides the options.
type env struct {
	vireo, qemu vmm
	guest       harness.Guest // the Linux guest
	tiny        harness.Guest // the tiny PVH guest
	host        hostInfo
	tmp         string // removed at the end
}

// prepare resolves the VMM binaries and guest images, failing with a clear
// message for anything missing, and writes the tiny guest to a temporary
// directory.
func prepare(o *options) (*env, error) {
	if err := harness.RequireKVM(); err != nil {
		return nil, err
	}
	vireoPath, err := harness.FindProgram(o.vireo, "build it with `make build`")
	if err != nil {
		return nil, err
	}
	qemuPath, err := harness.FindProgram(o.qemu, "install the qemu-system-x86 package (`make deps`)")
	if err != nil {
		return nil, err
	}
	e := &env{vireo: vireoVMM(vireoPath), qemu: qemuVMM(qemuPath)}

	kernel := o.kernel
	if kernel == "" {
		if kernel, err = harness.DefaultKernel(); err != nil {
			return nil, err
		}
	}
	if err := harness.CheckFile(kernel, "guest kernel", "build it with `make guest`, or pass -kernel"); err != nil {
		return nil, err
	}
	initrd := o.initrd
	if initrd == "" && (o.benches.boot || o.benches.mem) {
		if initrd, err = guestimg.DefaultInitrd(); err != nil {
			return nil, fmt.Errorf("%w: default initramfs: %w", harness.ErrMissing, err)
		}
	}
	if initrd != "" {
		if err := harness.CheckFile(initrd, "initramfs", "pass -initrd"); err != nil {
			return nil, err
		}
	}
	cmdline := o.cmdline
	if cmdline == "" {
		cmdline = guestimg.DefaultCmdline()
	}
	e.guest = harness.Guest{Kernel: kernel, Initrd: initrd, Cmdline: cmdline, MemMiB: o.memMiB, CPUs: o.cpus}

	if e.tmp, err = os.MkdirTemp("", "vireo-bench-"); err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	tinyPath, err := writeTinyELF(e.tmp)
	if err != nil {
		os.RemoveAll(e.tmp)
		return nil, err
	}
	e.tiny = harness.Guest{Kernel: tinyPath, Cmdline: "console=ttyS0", MemMiB: o.memMiB, CPUs: o.cpus}
	e.host = readHostInfo(vireoPath, qemuPath)
	return e, nil
}
