package main

import (
	"strconv"
)

// guestSpec is what both VMMs are asked to boot.
type guestSpec struct {
	Kernel  string
	Initrd  string // "" for none
	Cmdline string
	MemMiB  int
	CPUs    int
}

// vmm builds the command line that boots a guest in one VMM.
type vmm struct {
	Name string // "Vireo", "QEMU"
	Path string // the program
	Argv func(g guestSpec) []string
}

// qemuMachine is QEMU's configuration on this kind of host: microvm, KVM,
// a CPU model the nested KVM accepts, no default devices, the serial port
// on stdio.
var qemuMachine = []string{
	"-M", "microvm", "-enable-kvm", "-cpu", "qemu64,+xsaveerptr,+tsc-deadline",
	"-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
}

// vireoVMM runs `vireo run` with the console on stdio.
func vireoVMM(path string) vmm {
	return vmm{Name: "Vireo", Path: path, Argv: func(g guestSpec) []string {
		a := []string{path, "run",
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
		return a
	}}
}

// qemuVMM runs qemu-system-x86_64 with qemuMachine.
func qemuVMM(path string) vmm {
	return vmm{Name: "QEMU", Path: path, Argv: func(g guestSpec) []string {
		a := append([]string{path}, qemuMachine...)
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
		return a
	}}
}
