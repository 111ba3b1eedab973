package main

import (
	"runtime"

	"github.com/vireo-vmm/vireo/bench/internal/harness"
)

// hostInfo describes the machine and the programs compared.
type hostInfo struct {
	harness.Host
	GoVersion    string
	QEMUVersion  string
	VireoVersion string
}

func readHostInfo(vireoPath, qemuPath string) hostInfo {
	return hostInfo{
		Host:         harness.ReadHost(),
		GoVersion:    runtime.Version(),
		QEMUVersion:  harness.ProgramVersion(qemuPath, "--version"),
		VireoVersion: harness.ProgramVersion(vireoPath, "version"),
	}
}
