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

// The markers around this program's section of the output file.
const (
	sectionBegin = "<!-- migrate:begin -->"
	sectionEnd   = "<!-- migrate:end -->"
)

// report renders the section, markers included.
func report(o *options, subjects []*subject, when time.Time) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("%s\n## Live migration: downtime and total time\n\n", sectionBegin)
	w("Measured %s UTC: %d migrations per VMM and workload over loopback TCP", when.UTC().Format("2006-01-02 15:04"), o.runs)
	if len(subjects) > 1 {
		w(", the VMMs alternating (the one that goes first alternates between runs)")
	}
	w(". Medians, with the minimum and maximum in brackets. Reproduce with:\n\n```sh\ngo run ./bench/migrate -vireo bin/vireo -out BENCHMARKS.md\n```\n\n")
	w("- Host: %s.\n", hostLine())
	w("- Programs: %s", firstLine(o.vireo, "version"))
	if len(subjects) > 1 {
		w("; %s", firstLine(o.qemu, "--version"))
	}
	w(".\n- Guest: %d MiB, 1 vCPU, the project's guest kernel and busybox initramfs, booted once per VMM; the VM then moves between a running process and a fresh one started to receive it (`vireo run --incoming tcp:...`; QEMU `-M microvm` with `-incoming tcp:...`).\n", o.memMiB)
	w("- Idle: the guest sits at its shell prompt. Busy: `dirtier` (bench/migrate/csrc/dirtier.c, static C) keeps writing a %d MiB working set at %d MiB/s.\n", o.busyMiB, o.busyRate)
	w("- Both VMMs get a %v downtime limit and no bandwidth cap (QEMU's defaults are 300 ms and 128 MiB/s; Vireo's are 50 ms and none).\n", o.downtime)
	w("- Downtime, reported: each VMM's own `query-migrate` figure. Vireo counts from its request to pause the VM to the target's acknowledgement, which the target sends once it has rebuilt the VM; QEMU counts from the pause to the end of its sending. Downtime, seen by the guest: the source's STOP event to the target's RESUME event (QMP timestamps on one clock), the same measure for both. Total time: `query-migrate` total-time.\n\n")

	header := "| | " + subjects[0].name + " |"
	rule := "|---|---|"
	if len(subjects) > 1 {
		header += " " + subjects[1].name + " | Vireo/QEMU |"
		rule += "---|---|"
	}
	w("%s\n%s\n", header, rule)
	row := func(name, unit string, get func(*samples) []float64) {
		w("| %s |", name)
		var meds []float64
		for _, s := range subjects {
			v := get(s.res[strings.Fields(name)[0]])
			if len(v) == 0 {
				w(" n/a |")
				meds = append(meds, 0)
				continue
			}
			m := median(v)
			meds = append(meds, m)
			w(" %s %s (%s–%s) |", num(m), unit, num(slices.Min(v)), num(slices.Max(v)))
		}
		if len(subjects) > 1 {
			if meds[0] == 0 || meds[1] == 0 {
				w(" n/a |")
			} else {
				w(" %.2fx |", meds[0]/meds[1])
			}
		}
		w("\n")
	}
	for _, wl := range []string{"idle", "busy"} {
		row(wl+" guest: downtime seen by the guest", "ms", func(s *samples) []float64 { return millis(s.observed) })
		row(wl+" guest: downtime reported", "ms", func(s *samples) []float64 { return millis(s.reported) })
		row(wl+" guest: total time", "ms", func(s *samples) []float64 { return millis(s.total) })
		row(wl+" guest: data sent", "MB", func(s *samples) []float64 { return s.mb })
		row(wl+" guest: dirty bitmap syncs", "", func(s *samples) []float64 { return s.syncs })
	}
	w("\nRatios below 1 favour Vireo. The target for Vireo's downtime is under 50 ms. Data sent counts the stream's bytes: both skip zero pages (QEMU sends a flag per zero page, Vireo none in its first pass); both sides run on one loaded host, so the absolute times are context.\n%s\n", sectionEnd)
	return b.String()
}

func millis(v []time.Duration) []float64 {
	out := make([]float64, len(v))
	for i, d := range v {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
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

// writeSection replaces the migrate section of path (appending it, with
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
	tmp := path + ".tmp-migrate"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
