package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Section markers in BENCHMARKS.md.
const (
	beginMarker = "<!-- blk:begin -->"
	endMarker   = "<!-- blk:end -->"
)

// Targets from the project's issue.
const (
	targetThroughput = 1.2 // Vireo at least 1.2x QEMU
	targetCPU        = 1.0 // Vireo at most 1.0x QEMU's CPU per GiB
)

// kvmRows are the KVM statistics reported per request.
var kvmRows = []struct{ stat, label, format string }{
	{"insn_emulation", "guest instructions emulated by KVM", "%.0f"},
	{"exits", "KVM exits", "%.1f"},
	{"mmio_exits", "MMIO exits to the VMM", "%.1f"},
	{"irq_injections", "interrupts injected", "%.2f"},
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// stats is "median (min–max)" of v.
func stats(v []float64, format string) string {
	return fmt.Sprintf(format+" ("+format+"–"+format+")", median(v), slices.Min(v), slices.Max(v))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// report formats the results as a Markdown section with its markers.
func report(o *options, subjects []*subject, when time.Time) string {
	var b strings.Builder
	fmt.Fprintln(&b, beginMarker)
	fmt.Fprintln(&b, "## virtio-blk: Vireo beside QEMU")
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, "Measured %s: %d rounds, each measurement run on each VMM in turn, the order alternating between rounds. "+
		"Medians, with the minimum and maximum in parentheses. Reproduce with:\n\n", when.UTC().Format("2006-01-02 15:04 UTC"), o.runs)
	fmt.Fprintf(&b, "```sh\ngo run ./bench/blk -vireo bin/vireo -cache %s -runs %d -mib %d -seconds %g -depth %d -out BENCHMARKS.md\n```\n\n",
		o.cache, o.runs, o.mib, o.seconds, o.depth)
	fmt.Fprintf(&b, "- Host: %s.\n", hostLine())
	fmt.Fprintf(&b, "- Programs: %s; %s; bench built with %s.\n", firstLine(o.vireo, "version"), firstLine(o.qemu, "--version"), runtime.Version())
	fmt.Fprintf(&b, "- Guest: %d MiB, 1 vCPU, the project's kernel and busybox initramfs with the guest tool "+
		"[blkbench](bench/blk/guest/blkbench.c) (static C; O_DIRECT on /dev/vda); a %d MiB raw image full of data, one copy per VMM.\n",
		o.memMiB, o.imageMiB)
	fmt.Fprintf(&b, "- Disks: Vireo `--disk path=IMG,cache=%s`; QEMU `-drive file=IMG,if=none,id=d0,format=raw,cache=%s -device virtio-blk-device,drive=d0` "+
		"(`-M microvm,acpi=off`, virtio-mmio, QEMU's default thread-pool I/O). One request queue each.\n", o.cache, o.cache)
	fmt.Fprintf(&b, "- Measurements: sequential read and write of %d MiB in 1 MiB requests, one at a time (the write ends with fdatasync, "+
		"a FLUSH); %g s of 4 KiB reads at random 4 KiB-aligned offsets by %d threads, so that as many are in flight (the guest kernel has no Linux AIO). Before the rounds each guest reads the whole image once.\n",
		o.mib, o.seconds, o.depth)
	fmt.Fprintln(&b, "- CPU: the VMM's threads' CPU time (/proc/PID/task/TID/schedstat, nanoseconds) from the console's echo of the command to its result, divided by the GiB moved; "+
		"\"outside vCPUs\" leaves out the vCPU threads (thread ids from QMP query-cpus-fast). A thread that exits during a measurement is missed "+
		"(QEMU's idle I/O pool threads exit after a few seconds), which can only flatter QEMU. "+
		"On this host the vCPU threads' time includes KVM's emulation of the guest kernel, so the total mostly measures the guest; "+
		"the time outside the vCPUs is the VMM's own device work.")
	fmt.Fprintln(&b, "- Guest work: KVM's own statistics of the vCPU (QMP query-stats, which both VMMs serve), read just before and after each measurement, "+
		"per request: a 1 MiB request in the sequential measurements, a 4 KiB read in the random one.")
	fmt.Fprintln(&b)
	if len(subjects) < 2 {
		fmt.Fprintln(&b, "QEMU did not run: no comparison.")
		fmt.Fprintln(&b, endMarker)
		return b.String()
	}
	v, q := subjects[0], subjects[1]
	fmt.Fprintf(&b, "| Measurement | %s | %s | %s/%s | Target | |\n|---|---|---|---|---|---|\n", v.name, q.name, v.name, q.name)
	for ti, t := range tests {
		rate := func(s *subject) []float64 {
			out := make([]float64, len(s.res[ti]))
			for i, sm := range s.res[ti] {
				out[i] = sm.rate
			}
			return out
		}
		cpu := func(s *subject, other bool) []float64 {
			out := make([]float64, len(s.res[ti]))
			for i, sm := range s.res[ti] {
				d := sm.cpu.total
				if other {
					d = sm.cpu.other()
				}
				out[i] = perGiB(d, sm.bytes)
			}
			return out
		}
		r := median(rate(v)) / median(rate(q))
		fmt.Fprintf(&b, "| %s (%s) | %s | %s | %.2fx | ≥ %.1fx | %s |\n", t.name, t.unit,
			stats(rate(v), "%.1f"), stats(rate(q), "%.1f"), r, targetThroughput, verdict(r >= targetThroughput))
		for _, other := range []bool{false, true} {
			label := "CPU s/GiB, whole process"
			if other {
				label = "CPU s/GiB, outside vCPUs"
			}
			vc, qc := median(cpu(v, other)), median(cpu(q, other))
			ratio, ok := "–", vc <= qc*targetCPU
			if qc > 0 {
				ratio = fmt.Sprintf("%.2fx", vc/qc)
			}
			fmt.Fprintf(&b, "| %s: %s | %s | %s | %s | ≤ %.1fx | %s |\n", t.name, label,
				stats(cpu(v, other), "%.2f"), stats(cpu(q, other), "%.2f"), ratio, targetCPU, verdict(ok))
		}
		perReq := func(s *subject, stat string) []float64 {
			out := make([]float64, len(s.res[ti]))
			for i, sm := range s.res[ti] {
				out[i] = float64(sm.kvm[stat]) / sm.ios
			}
			return out
		}
		for _, k := range kvmRows {
			vk, qk := perReq(v, k.stat), perReq(q, k.stat)
			ratio := "–"
			if median(qk) > 0 {
				ratio = fmt.Sprintf("%.2fx", median(vk)/median(qk))
			}
			fmt.Fprintf(&b, "| %s: %s per request | %s | %s | %s | | |\n", t.name, k.label,
				stats(vk, k.format), stats(qk, k.format), ratio)
		}
	}
	idle := func(s *subject, other bool) []float64 {
		out := make([]float64, len(s.idle))
		for i, sm := range s.idle {
			d := sm.cpu.total
			if other {
				d = sm.cpu.other()
			}
			out[i] = perSecond(d, sm.seconds)
		}
		return out
	}
	if len(v.idle) > 0 && len(q.idle) > 0 {
		for _, other := range []bool{false, true} {
			label := "whole process"
			if other {
				label = "outside vCPUs"
			}
			fmt.Fprintf(&b, "| guest idle (%g s): CPU ms/s, %s | %s | %s | %.2fx | | |\n", o.seconds, label,
				stats(idle(v, other), "%.2f"), stats(idle(q, other), "%.2f"), median(idle(v, other))/median(idle(q, other)))
		}
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, endMarker)
	return b.String()
}

// writeSection replaces the blk section of the Markdown file at path, or
// appends it; the file is re-read right before writing.
func writeSection(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i >= 0 && j > i {
		s = s[:i] + strings.TrimSuffix(section, "\n") + s[j+len(endMarker):]
	} else {
		if s != "" && !strings.HasSuffix(s, "\n\n") {
			s = strings.TrimRight(s, "\n") + "\n\n"
		}
		s += section
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

// hostLine describes the machine.
func hostLine() string {
	release := strings.TrimSpace(readFile("/proc/sys/kernel/osrelease"))
	model := "unknown CPU"
	for _, l := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			model = strings.TrimSpace(v)
			break
		}
	}
	kvm := ""
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		kvm = "; kvm_pvm: nested, software-assisted KVM (guest kernel code runs through KVM's instruction emulator)"
	}
	return fmt.Sprintf("Linux %s, %s, %d CPUs%s", release, model, runtime.NumCPU(), kvm)
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown"
	}
	l, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(l)
}
