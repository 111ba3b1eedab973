package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/vireo-vmm/vireo/bench/internal/harness"
)

// targetQMPRatio is the target: Vireo's median query-status
// round trip at most this multiple of QEMU's.
const targetQMPRatio = 1.0

// report is everything the section shows.
type report struct {
	When               time.Time
	Command            string
	Host               harness.Host
	LoadStart, LoadEnd string
	Vireo, QEMU        string // versions
	Guest              harness.Guest
	Opts               *options
	QMP                *qmpResults   // nil when not run
	Start              *startResults // nil when not run
}

// markdown renders the section, markers included.
func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## Control plane: QMP beside QEMU, and starting through the Firecracker API\n\n")
	w("Measured %s UTC. Reproduce with:\n\n```sh\n%s\n```\n\n", r.When.UTC().Format("2006-01-02 15:04"), r.Command)
	w("- Host: %s; load average (1, 5, 15 min) %s at the start and %s at the end of the run (the host is shared: other work competes for its CPUs).\n", r.Host, r.LoadStart, r.LoadEnd)
	w("- Programs: %s", r.Vireo)
	if r.QEMU != "" {
		w("; %s", r.QEMU)
	}
	w(".\n")
	w("- Guest: %d MiB, %d vCPU; kernel `%s`, initramfs `%s` (its /init prints `%s` on the serial console right after mounting /proc, /sys and /dev); the project's guest command line.\n\n",
		r.Guest.MemMiB, r.Guest.CPUs, harness.DisplayPath(r.Guest.Kernel), harness.DisplayPath(r.Guest.Initrd), harness.BootMarker)
	if r.QMP != nil {
		r.qmpSection(&b)
	}
	if r.Start != nil {
		r.startSection(&b)
	}
	r.details(&b)
	return harness.Section(sectionName, b.String())
}

// qmpSection renders the QMP table.
func (r *report) qmpSection(b *strings.Builder) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	q, o := r.QMP, r.Opts
	w("### QMP: query-status round trip\n\n")
	w("Vireo (`--qmp unix:PATH`) and QEMU (`-qmp unix:PATH,server=on,wait=off`) boot the guest to its shell, one after the other, and stay running, idle. One client session each negotiates capabilities and runs %d untimed round trips; then %d timed round trips per VMM in blocks of %d, the VMMs alternating block by block (the one that goes first alternates too). Both sessions use the same client code: it writes `{\"execute\": \"query-status\"}` as one line and reads the reply line; the clock runs from before the write to the end of the reply.\n\n",
		o.warmup, len(q.Vireo), o.block)
	v, e := harness.Summarize(q.Vireo), harness.Summarize(q.QEMU)
	w("| query-status round trip | Vireo | QEMU | Vireo/QEMU |\n|---|---:|---:|---:|\n")
	row := func(name string, a, b float64) {
		w("| %s | %s | %s | %s |\n", name, micros(a), micros(b), ratioText(a, b))
	}
	row("**median**", v.Median, e.Median)
	row("p90", v.P90, e.P90)
	row("p99", v.P99, e.P99)
	row("minimum", v.Min, e.Min)
	row("maximum", v.Max, e.Max)
	w("\nTarget: Vireo's median at most %.1fx QEMU's: %s.\n\n", targetQMPRatio, verdict(v.Median, e.Median, targetQMPRatio))
}

// startSection renders the start table.
func (r *report) startSection(b *strings.Builder) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	s := r.Start
	w("### Firecracker API: InstanceStart to user space\n\n")
	w("`vireo run --api-sock PATH` starts with no VM and waits to be configured, as Firecracker does; the benchmark sends `PUT /machine-config` (vCPUs, memory) and `PUT /boot-source` (kernel, initramfs, command line) over HTTP on that socket, then `PUT /actions {\"action_type\": \"InstanceStart\"}`, and times from that request to `%s` on the serial console. Beside it, `vireo run --kernel ... --initrd ...` boots the same guest and is timed from exec to the same marker. %s each way, alternating (the way that goes first alternates between runs); medians, with the minimum and maximum in brackets.\n\n",
		harness.BootMarker, plural(len(s.FirstWay), "run"))
	api, cli := harness.Summarize(s.APIToMarker), harness.Summarize(s.CLIToMarker)
	w("| | median (min–max) |\n|---|---:|\n")
	w("| **API**: InstanceStart request → `%s` | %s |\n", harness.BootMarker, seconds(api))
	w("| **CLI**: `vireo run` exec → `%s` | %s |\n", harness.BootMarker, seconds(cli))
	w("| API/CLI (medians) | %s |\n", ratioText(api.Median, cli.Median))
	w("| API: exec → API socket answering (`GET /`) | %s |\n", millis(harness.Summarize(s.APIReady)))
	w("| API: `PUT /machine-config` and `PUT /boot-source` | %s |\n", millis(harness.Summarize(s.Configure)))
	w("| API: InstanceStart request → its 204 reply | %s |\n", millis(harness.Summarize(s.StartReply)))
	w("| API: exec → `%s` (whole process, configuration included) | %s |\n\n", harness.BootMarker, seconds(harness.Summarize(s.APIExecToMarker)))
	w("Both ways include building the VM (KVM VM, guest memory, kernel and initramfs loading, devices, vCPUs); the API way leaves out the process's own start (exec to a listening socket, timed above), which the command-line way includes. Nearly all of either time is the guest kernel's boot, which runs in KVM's instruction emulator on this host.\n\n")
}

// details renders the per-run numbers and the command lines.
func (r *report) details(b *strings.Builder) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	summary := "Command lines"
	if r.Start != nil {
		summary = "Per-run numbers, command lines"
	}
	w("<details><summary>%s</summary>\n\n", summary)
	if s := r.Start; s != nil {
		w("| run | first | API: InstanceStart → marker s | CLI: exec → marker s | API ready ms | configure ms | InstanceStart reply ms |\n")
		w("|---:|---|---:|---:|---:|---:|---:|\n")
		for i, first := range s.FirstWay {
			w("| %d | %s | %s | %s | %s | %s | %s |\n", i+1, first,
				at(s.APIToMarker, i, 1000, 2), at(s.CLIToMarker, i, 1000, 2),
				at(s.APIReady, i, 1, 1), at(s.Configure, i, 1, 1), at(s.StartReply, i, 1, 1))
		}
		w("\n")
	}
	w("Command lines (the sockets, and the vireo binary when the program built it, live in a temporary directory):\n\n```sh\n")
	if q := r.QMP; q != nil {
		w("%s\n%s\n", harness.ShellJoin(q.VireoArgv), harness.ShellJoin(q.QEMUArgv))
	}
	if s := r.Start; s != nil {
		w("%s\n%s\n", harness.ShellJoin(s.APIArgv), harness.ShellJoin(s.CLIArgv))
	}
	w("```\n\n</details>\n")
}

// plural formats a count of things: "1 run", "5 runs".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// micros formats microseconds.
func micros(us float64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.2f ms", us/1000)
	}
	return fmt.Sprintf("%.1f µs", us)
}

// seconds formats a summary of milliseconds as seconds.
func seconds(s harness.Summary) string {
	if s.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f s (%.2f–%.2f)", s.Median/1000, s.Min/1000, s.Max/1000)
}

// millis formats a summary of milliseconds.
func millis(s harness.Summary) string {
	if s.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f ms (%.1f–%.1f)", s.Median, s.Min, s.Max)
}

// at formats xs[i]/div with prec decimals, or "–" when missing.
func at(xs []float64, i int, div float64, prec int) string {
	if i >= len(xs) {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, xs[i]/div)
}

func ratioText(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx", harness.Ratio(a, b))
}

// verdict says whether a is within limit times b.
func verdict(a, b, limit float64) string {
	if a == 0 || b == 0 {
		return "not measured"
	}
	if a <= limit*b {
		return fmt.Sprintf("met (%.2fx)", a/b)
	}
	return fmt.Sprintf("**not met** (%.2fx)", a/b)
}
