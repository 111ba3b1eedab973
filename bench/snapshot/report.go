package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The markers around this program's section of the output file.
const (
	sectionBegin = "<!-- snapshot:begin -->"
	sectionEnd   = "<!-- snapshot:end -->"
)

// Targets of the issue for restore to running.
const (
	targetRestore = 10 * time.Millisecond
	targetRatio   = 0.5
)

// report renders the section, markers included.
func report(o *options, r *results, when time.Time) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("%s\n## Snapshot and restore: Vireo beside QEMU\n\n", sectionBegin)
	w("Measured %s UTC: %d measurements per VMM and quantity after one untimed round, the VMMs alternating (the one that goes first alternates). Medians, with the minimum and maximum in brackets. Reproduce with:\n\n", when.UTC().Format("2006-01-02 15:04"), o.runs)
	w("```sh\ngo run ./bench/snapshot -vireo bin/vireo -out BENCHMARKS.md\n```\n\n")
	w("- Host: %s; load average %s when the run ended (the host is shared: other work competes for its 2 CPUs, and KVM's VM set-up ioctls wait for RCU grace periods, which stretch under load).\n", hostLine(), loadAverage())
	w("- Programs: %s; %s.\n", r.vireoBuilt, r.qemuVersion)
	w("- Guest: %d MiB, 1 vCPU, the project's guest kernel and busybox initramfs, booted once per VMM and idle at its shell during creation. Files live in %s (the page cache holds them: restores read memory, not the disk).\n", o.memMiB, os.TempDir())
	w("- Vireo saves a snapshot directory (`state` and a sparse memory file; `vireo snapshot create --qmp unix:SOCK DIR`, QMP `x-vireo-snapshot-create`) and restores it with `vireo run --restore DIR`, mapping the memory file privately so pages load as the guest touches them. QEMU saves with `stop` then `migrate \"exec:cat > FILE\"` (bandwidth limit lifted; QEMU 7.2 has no `file:` migration) and restores with `-incoming \"exec:cat FILE\"`, reading the whole stream before the guest runs.\n")
	w("- Restore to running: Vireo from exec to the wall-clock timestamp of its `vCPUs running` debug line (logged as the restored vCPUs are released into KVM_RUN), QEMU from exec to the timestamp of its RESUME event. Restore to first output: from exec to the first console byte; the snapshots were taken while the guest printed to its serial port in a loop, so this adds the guest's own way back to its console.\n\n")

	w("| | Vireo | QEMU | Vireo/QEMU |\n|---|---|---|---|\n")
	row := func(name string, v, q []time.Duration) {
		w("| %s | %s | %s | %s |\n", name, cell(v), cell(q), ratio(v, q))
	}
	row("create: command end to end (`vireo snapshot create` process / stop + migrate until completed)", r.vireoCLI, r.qemuSave)
	row("create: the VMM's own time (QMP command round trip / QEMU total-time)", r.vireoQMP, r.qemuTotal)
	row("**restore to running** (exec to vCPUs running / RESUME)", r.vireoRun, r.qemuRun)
	row("restore to the guest's first console byte", r.vireoOut, r.qemuOut)
	w("| snapshot on disk (allocated) | %s | %s | %.2fx |\n\n", mib(r.vireoFinal), mib(r.qemuFinal), float64(r.vireoFinal)/float64(max(r.qemuFinal, 1)))

	w("Vireo's restore, inside the process (from its debug log): loading and checking the state file and opening the memory file %s; building the machine (KVM VM, guest RAM mapped privately from the memory file, irqchip, PIT, devices) and releasing its vCPUs %s, plus loading every component's state into it (irqchip, PIT, clock, legacy devices, vCPUs created on their threads with their saved registers, virtio transports) %s; %s from the Go program's start to the vCPUs' release. The rest of exec to running is the kernel's exec and the Go runtime's start.\n\n", cell(r.vireoLoad), cell(r.vireoBuild), cell(r.vireoState), cell(r.vireoSince))

	if len(r.vireoRun) > 0 && len(r.qemuRun) > 0 {
		vm, qm := median(r.vireoRun), median(r.qemuRun)
		verdict := func(ok bool) string {
			if ok {
				return "met"
			}
			return "**not met**"
		}
		w("Targets: restore to running under %v for a %d MiB guest: %s (%s); at most %.1fx QEMU's: %s (%.3fx).\n", targetRestore, o.memMiB, verdict(vm < targetRestore), ms(vm), targetRatio, verdict(float64(vm) <= targetRatio*float64(qm)), float64(vm)/float64(qm))
	}
	w("%s\n", sectionEnd)
	return b.String()
}

func cell(v []time.Duration) string {
	if len(v) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s (%s–%s)", msNum(median(v)), msNum(slices.Min(v)), msNum(slices.Max(v)))
}

func msNum(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f ms", f)
	case f >= 10:
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.2f ms", f)
}

func ratio(v, q []time.Duration) string {
	if len(v) == 0 || len(q) == 0 || median(q) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", float64(median(v))/float64(median(q)))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func median(v []time.Duration) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// hostLine describes the machine.
func hostLine() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	model := "unknown CPU"
	cpuinfo, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(cpuinfo), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			model = strings.TrimSpace(v)
			break
		}
	}
	kvm := ""
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		kvm = "; kvm_pvm: nested, software-assisted KVM (guest kernel code runs through KVM's instruction emulator)"
	}
	return fmt.Sprintf("Linux %s, %s, %d CPUs%s", strings.TrimSpace(string(b)), model, runtime.NumCPU(), kvm)
}

// writeSection replaces the snapshot section of path (appending it, with
// its markers, when absent), reading the file right before writing.
func writeSection(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	i := strings.Index(text, sectionBegin)
	j := strings.Index(text, sectionEnd)
	if i >= 0 && j > i {
		text = text[:i] + strings.TrimSuffix(section, "\n") + text[j+len(sectionEnd):]
	} else {
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		if text != "" {
			text += "\n"
		}
		text += section
	}
	tmp := path + ".snapshot.tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// loadAverage is the host's 1-minute load average.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}
