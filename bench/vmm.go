package main

import "github.com/vireo-vmm/vireo/bench/internal/harness"

// vmm builds the command line that boots a guest in one VMM.
type vmm struct {
	Name string // "Vireo", "QEMU"
	Path string // the program
	Argv func(g harness.Guest) []string
}

// vireoVMM runs `vireo run` with the console on stdio.
func vireoVMM(path string) vmm {
	return vmm{Name: "Vireo", Path: path, Argv: func(g harness.Guest) []string { return harness.VireoArgv(path, g) }}
}

// qemuVMM runs qemu-system-x86_64 with harness.QEMUMachine.
func qemuVMM(path string) vmm {
	return vmm{Name: "QEMU", Path: path, Argv: func(g harness.Guest) []string { return harness.QEMUArgv(path, g) }}
}
