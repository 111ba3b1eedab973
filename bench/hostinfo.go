package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// hostInfo describes the machine and the programs compared.
type hostInfo struct {
	KernelRelease string // uname -r
	CPUModel      string
	NProc         int
	KVM           string // which KVM module, and what it implies
	GoVersion     string
	QEMUVersion   string
	VireoVersion  string
}

func readHostInfo(vireoPath, qemuPath string) hostInfo {
	return hostInfo{
		KernelRelease: firstLine(readText("/proc/sys/kernel/osrelease")),
		CPUModel:      cpuModel(readText("/proc/cpuinfo")),
		NProc:         runtime.NumCPU(),
		KVM:           kvmFlavour(),
		GoVersion:     runtime.Version(),
		QEMUVersion:   firstLine(commandOutput(qemuPath, "--version")),
		VireoVersion:  firstLine(commandOutput(vireoPath, "version")),
	}
}

// cpuModel returns the first "model name" of /proc/cpuinfo text.
func cpuModel(cpuinfo string) string {
	sc := bufio.NewScanner(strings.NewReader(cpuinfo))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// kvmFlavour names the loaded KVM vendor module.
func kvmFlavour() string {
	for _, m := range []struct{ module, desc string }{
		{"kvm_pvm", "kvm_pvm: nested, software-assisted KVM; guest kernel code runs through KVM's instruction emulator"},
		{"kvm_intel", "kvm_intel (VMX)"},
		{"kvm_amd", "kvm_amd (SVM)"},
	} {
		if _, err := os.Stat("/sys/module/" + m.module); err == nil {
			return m.desc
		}
	}
	return "unknown"
}

func readText(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return string(b)
}

// commandOutput runs a short command and returns its output, or "".
func commandOutput(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if s == "" {
		return "unknown"
	}
	return s
}
