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

// The markers around this program's section of BENCHMARKS.md.
const (
	sectionBegin = "<!-- net:begin -->"
	sectionEnd   = "<!-- net:end -->"
)

// targetThroughput is the goal: Vireo's throughput at least 1.2x QEMU's.
const targetThroughput = 1.2

// stat is a median with its range.
type stat struct{ med, min, max float64 }

func summarize(xs []float64) stat {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return stat{}
	}
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{med, s[0], s[len(s)-1]}
}

func field(rs []sample, f func(sample) float64) stat {
	var xs []float64
	for _, r := range rs {
		xs = append(xs, f(r))
	}
	return summarize(xs)
}

// render writes the section, markers included.
func render(o *options, res map[string][]sample, when time.Time) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("%s\n## Networking: virtio-net over TAP, Vireo beside QEMU\n\n", sectionBegin)
	w("Measured %s: %d boots per VMM, alternating (the one that goes first alternates), each moving %s each way over TCP. ",
		when.UTC().Format("2006-01-02 15:04 MST"), o.n, sizeText(o.bytes))
	w("Reproduce with:\n\n```sh\nsudo go run ./bench/net %s\n```\n\n", strings.Join(o.args, " "))
	w("- Host: Linux %s, %s, %d CPUs; load average at the end %s.\n", firstLine(read("/proc/sys/kernel/osrelease")), cpuModel(), runtime.NumCPU(), firstLine(read("/proc/loadavg")))
	w("- Programs: %s; %s.\n", firstLine(output(o.vireo, "version")), firstLine(output(o.qemu, "--version")))
	w("- Guest: the project's kernel, %d MiB, 1 vCPU, the busybox initramfs plus `vnetperf` (a static C program that sends or checks a pseudo-random TCP stream); same command line for both.\n", o.memMiB)
	w("- Vireo: `--net tap=%s`. QEMU: `-M microvm,acpi=off` (only without ACPI does microvm put its virtio-mmio devices on the kernel command line), `-netdev tap,...,vhost=off -device virtio-net-device`.\n", tapName)
	w("- Each boot runs in a network namespace with the host end of the TAP at %s: the host pings the guest %d times (busybox ping, average round trip), the guest sends to a Go receiver that checks every byte (rate from its first to its last byte), then the host sends to `vnetperf recv` in the guest, which checks every byte and reports its rate. CPU is the VMM process's user+system time (vCPU threads included) over both transfers, per GiB moved.\n\n", hostIP, o.pings)

	v, q := res["Vireo"], res["QEMU"]
	w("| Measurement | Vireo median (min–max) | QEMU median (min–max) | Vireo/QEMU | Target | Met |\n|---|---:|---:|---:|---|---|\n")
	row := func(name, unit string, f func(sample) float64, target bool) {
		sv, sq := field(v, f), field(q, f)
		ratio := "–"
		if sq.med > 0 {
			ratio = fmt.Sprintf("%.2f", sv.med/sq.med)
		}
		goal, met := "–", "–"
		if target {
			goal = fmt.Sprintf("≥ %.1fx QEMU", targetThroughput)
			met = "no"
			if sq.med > 0 && sv.med/sq.med >= targetThroughput {
				met = "yes"
			}
		}
		w("| %s | %s | %s | %s | %s | %s |\n", name, span(sv, unit), span(sq, unit), ratio, goal, met)
	}
	row("TCP guest → host", "MB/s", func(s sample) float64 { return s.G2H }, true)
	row("TCP host → guest", "MB/s", func(s sample) float64 { return s.H2G }, true)
	row("ping round trip (host → guest)", "ms", func(s sample) float64 { return s.RTT }, false)
	row("VMM CPU per GiB moved", "s", func(s sample) float64 { return s.CPUPerGiB }, false)
	row("exec → guest link up", "s", func(s sample) float64 { return s.BootToLink }, false)
	w("\nOn this host guest kernel code runs through KVM's instruction emulator, so the guest's own network stack, not the device model, bounds throughput and round trip; the per-boot figures vary with the load other work puts on the shared CPUs.\n")
	w("%s\n", sectionEnd)
	return b.String()
}

func span(s stat, unit string) string {
	prec := 2
	if s.med >= 100 {
		prec = 0
	}
	return fmt.Sprintf("%.*f %s (%.*f–%.*f)", prec, s.med, unit, prec, s.min, prec, s.max)
}

func sizeText(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// replaceSection puts section between the markers of path, or appends it
// (with its markers) when they are absent. The file is read right before
// it is written.
func replaceSection(path, section string) error {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, sectionBegin), strings.Index(s, sectionEnd)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + strings.TrimSuffix(section, "\n") + s[j+len(sectionEnd):]
	default:
		if s != "" && !strings.HasSuffix(s, "\n\n") {
			s = strings.TrimRight(s, "\n") + "\n\n"
		}
		s += section
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func read(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func output(prog string, args ...string) string {
	out, err := exec.Command(prog, args...).Output()
	if err != nil {
		return prog + " (version unknown)"
	}
	return string(out)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func cpuModel() string {
	for _, l := range strings.Split(read("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
