package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vireo-vmm/vireo/bench/internal/harness"
)

// Targets for Vireo.
const (
	targetInsnRatio   = 0.5  // (a) at most half of QEMU's time
	targetBootRatio   = 1.0  // (b) no slower than QEMU
	targetOverheadMiB = 10.0 // (c) at most this much VMM overhead
)

// report is everything the generated section shows.
type report struct {
	When        time.Time
	Command     string
	Host        hostInfo
	Guest, Tiny harness.Guest
	Opts        *options
	Res         *results
	Vireo, QEMU vmm
}

// markdown renders the section, markers included, ending in a newline.
func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	o, res := r.Opts, r.Res

	w("## Boot: Vireo beside QEMU\n\n")
	iterations := "iterations"
	if o.n == 1 {
		iterations = "iteration"
	}
	w("Measured %s: %d %s per VMM and benchmark, alternating Vireo and QEMU (the one that goes first alternates between iterations)", r.When.Format("2006-01-02 15:04 MST"), o.n, iterations)
	if o.warmup && o.benches.insn {
		w(", after one untimed warm-up boot of the tiny guest in each")
	}
	w(". Reproduce with `make bench`, or:\n\n```sh\n%s\n```\n\n", r.Command)

	h := r.Host
	kvm := h.KVM
	if kvm == "" {
		kvm = "unknown"
	}
	w("- Host: Linux %s, %s, %d CPUs (`nproc`); %s.\n", h.Kernel, h.CPU, h.NProc, kvm)
	w("- Programs: %s; %s; bench built with %s.\n", h.VireoVersion, h.QEMUVersion, h.GoVersion)
	w("- Guest: %d MiB, %d vCPU; kernel `%s` (%s)", r.Guest.MemMiB, r.Guest.CPUs, harness.DisplayPath(r.Guest.Kernel), fileSize(r.Guest.Kernel))
	if r.Guest.Initrd != "" {
		w("; initramfs `%s` (%s)", harness.DisplayPath(r.Guest.Initrd), fileSize(r.Guest.Initrd))
	}
	w("; command line `%s`.\n\n", r.Guest.Cmdline)

	w("| Benchmark | Vireo median (min–max) | QEMU median (min–max) | Vireo/QEMU | Target | Met |\n")
	w("|---|---:|---:|---:|---|---|\n")
	if o.benches.insn {
		v, q := harness.Summarize(res.Insn.Vireo), harness.Summarize(res.Insn.QEMU)
		w("| (a) process start → first guest instruction | %s | %s | %s | ≤ %.1fx QEMU | %s |\n",
			span(v, "ms", 1), span(q, "ms", 1), ratioText(v, q), targetInsnRatio, ratioVerdict(v, q, targetInsnRatio, "ms", 1))
	}
	if o.benches.boot {
		v, q := harness.Summarize(res.Boot.Vireo), harness.Summarize(res.Boot.QEMU)
		w("| (b) process start → `VIREO-BOOT-OK` | %s | %s | %s | ≤ %.1fx QEMU | %s |\n",
			span(v, "s", 2), span(q, "s", 2), ratioText(v, q), targetBootRatio, ratioVerdict(v, q, targetBootRatio, "s", 2))
	}
	if o.benches.mem {
		v, q := harness.Summarize(res.Mem.Vireo), harness.Summarize(res.Mem.QEMU)
		verdict := "yes"
		if v.Median > targetOverheadMiB {
			verdict = fmt.Sprintf("no: %.1f MiB over", v.Median-targetOverheadMiB)
		}
		w("| (c) VMM memory overhead after boot | %s | %s | %s | Vireo ≤ %.0f MiB | %s |\n",
			span(v, "MiB", 1), span(q, "MiB", 1), ratioText(v, q), targetOverheadMiB, verdict)
	}
	w("\n")
	r.details(&b)
	return harness.Section(sectionName, b.String())
}

// details renders the raw numbers, the memory split and the command lines
// in a collapsed block.
func (r *report) details(b *strings.Builder) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	o, res := r.Opts, r.Res
	w("<details><summary>Per-iteration numbers, memory split, command lines</summary>\n\n")

	head := []string{"#", "first"}
	type column struct {
		xs   []float64
		prec int
	}
	var cols []column
	addCols := func(on bool, label string, p pair, prec int) {
		if on {
			head = append(head, fmt.Sprintf(label, "Vireo"), fmt.Sprintf(label, "QEMU"))
			cols = append(cols, column{p.Vireo, prec}, column{p.QEMU, prec})
		}
	}
	addCols(o.benches.insn, "(a) %s ms", res.Insn, 1)
	addCols(o.benches.boot, "(b) %s s", res.Boot, 2)
	addCols(o.benches.mem, "(c) %s MiB", res.Mem, 1)
	w("| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---:|", len(head)))
	for i, first := range res.FirstVMM {
		row := []string{fmt.Sprint(i + 1), first}
		for _, c := range cols {
			cell := "–"
			if i < len(c.xs) {
				cell = fmt.Sprintf("%.*f", c.prec, c.xs[i])
			}
			row = append(row, cell)
		}
		w("| %s |\n", strings.Join(row, " | "))
	}
	w("\n")

	if o.benches.mem {
		w("Resident memory after boot, MiB (median over iterations): total RSS = guest RAM resident + VMM overhead.\n\n")
		w("| VMM | RSS | guest RAM resident | overhead |\n|---|---:|---:|---:|\n")
		for _, name := range []string{r.Vireo.Name, r.QEMU.Name} {
			var total, guest, over []float64
			var ambiguous bool
			var merged uint64
			for _, u := range res.Usage[name] {
				total, guest, over = append(total, mib(u.Total)), append(guest, mib(u.Guest)), append(over, mib(u.Overhead))
				ambiguous = ambiguous || u.Ambiguous
				merged = max(merged, u.Merged)
			}
			note := ""
			if ambiguous {
				note += " (several mappings had the guest size; the most resident was taken)"
			}
			if merged > 0 {
				note += fmt.Sprintf(" (guest RAM shared its mapping with up to %s of other memory, counted as overhead)", humanBytes(merged))
			}
			w("| %s%s | %.1f | %.1f | %.1f |\n", name, note, harness.Summarize(total).Median, harness.Summarize(guest).Median, harness.Summarize(over).Median)
		}
		w("\nLargest resident mappings besides guest RAM (last boot of each):\n\n")
		for _, name := range []string{r.Vireo.Name, r.QEMU.Name} {
			us := res.Usage[name]
			if len(us) == 0 {
				continue
			}
			var parts []string
			for _, m := range us[len(us)-1].Top {
				parts = append(parts, fmt.Sprintf("%s %.1f", mappingLabel(m), mib(m.Rss)))
			}
			w("- %s: %s (MiB)\n", name, strings.Join(parts, ", "))
		}
		w("\n")
	}

	w("Command lines (the tiny guest is written to a temporary directory):\n\n```sh\n")
	if o.benches.insn {
		w("%s\n%s\n", harness.ShellJoin(r.Vireo.Argv(r.Tiny)), harness.ShellJoin(r.QEMU.Argv(r.Tiny)))
	}
	if o.benches.boot || o.benches.mem {
		w("%s\n%s\n", harness.ShellJoin(r.Vireo.Argv(r.Guest)), harness.ShellJoin(r.QEMU.Argv(r.Guest)))
	}
	w("```\n\n</details>\n")
}

// span formats "median unit (min–max)".
func span(s harness.Summary, unit string, prec int) string {
	if s.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.*f %s (%.*f–%.*f)", prec, s.Median, unit, prec, s.Min, prec, s.Max)
}

func ratioText(v, q harness.Summary) string {
	if v.N == 0 || q.N == 0 || q.Median == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx", harness.Ratio(v.Median, q.Median))
}

// ratioVerdict says whether Vireo's median is within limit times QEMU's,
// and by how much it misses otherwise.
func ratioVerdict(v, q harness.Summary, limit float64, unit string, prec int) string {
	if v.N == 0 || q.N == 0 {
		return "–"
	}
	allowed := q.Median * limit
	if v.Median <= allowed {
		return "yes"
	}
	return fmt.Sprintf("no: %.*f %s over (%.*f allowed)", prec, v.Median-allowed, unit, prec, allowed)
}

// mappingLabel names a mapping for people: its file's base name, its
// bracketed kind, or "anon".
func mappingLabel(m mapping) string {
	switch {
	case m.Path == "":
		return fmt.Sprintf("anon %s", humanBytes(m.Size))
	case strings.HasPrefix(m.Path, "["):
		return m.Path
	}
	return fmt.Sprintf("%s (%s)", filepath.Base(m.Path), m.Perms)
}

// humanBytes formats a mapping size compactly.
func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dG", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.0fM", mib(n))
	}
	return fmt.Sprintf("%dK", n>>10)
}

func fileSize(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return "size unknown"
	}
	return fmt.Sprintf("%.1f MiB", mib(uint64(st.Size())))
}

// reproduceCommand is the command line that ran this program.
func reproduceCommand(args []string) string {
	return harness.ShellJoin(append([]string{"go", "run", "./bench"}, args...))
}
