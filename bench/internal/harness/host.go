package harness

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Host describes the machine a benchmark ran on.
type Host struct {
	Kernel string // uname -r
	CPU    string // the first model name in /proc/cpuinfo
	NProc  int
	KVM    string // which KVM module is loaded, and what it implies
}

// ReadHost describes this machine.
func ReadHost() Host {
	return Host{
		Kernel: FirstLine(readText("/proc/sys/kernel/osrelease")),
		CPU:    cpuModel(readText("/proc/cpuinfo")),
		NProc:  runtime.NumCPU(),
		KVM:    kvmFlavour(),
	}
}

// String is the host as the sections of BENCHMARKS.md name it.
func (h Host) String() string {
	s := "Linux " + h.Kernel + ", " + h.CPU + ", " + strconv.Itoa(h.NProc) + " CPUs"
	if h.KVM != "" {
		s += "; " + h.KVM
	}
	return s
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
	return "unknown CPU"
}

// kvmFlavour names the loaded KVM vendor module.
func kvmFlavour() string {
	for _, m := range []struct{ module, desc string }{
		{"kvm_pvm", "kvm_pvm: nested, software-assisted KVM (guest kernel code runs through KVM's instruction emulator)"},
		{"kvm_intel", "kvm_intel (VMX)"},
		{"kvm_amd", "kvm_amd (SVM)"},
	} {
		if _, err := os.Stat("/sys/module/" + m.module); err == nil {
			return m.desc
		}
	}
	return ""
}

// LoadAverage is the host's load average over 1, 5 and 15 minutes, as
// /proc/loadavg gives it ("0.52 1.10 2.03"), or "unknown".
func LoadAverage() string {
	f := strings.Fields(readText("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// ProgramVersion runs a program's version command and returns the first
// line of its output, or "unknown".
func ProgramVersion(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "unknown"
	}
	return FirstLine(string(out))
}

// FirstLine is the first line of s, trimmed, or "unknown" when empty.
func FirstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if s = strings.TrimSpace(s); s == "" {
		return "unknown"
	}
	return s
}

func readText(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return string(b)
}
