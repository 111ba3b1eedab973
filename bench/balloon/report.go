package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

const (
	beginMarker = "<!-- balloon:begin -->"
	endMarker   = "<!-- balloon:end -->"
)

// summary is the median, minimum and maximum of some values.
type summary struct{ med, lo, hi float64 }

func summarize(v []float64) summary {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return summary{}
	}
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return summary{med: med, lo: s[0], hi: s[n-1]}
}

func pick(samples []sample, f func(sample) float64) summary {
	v := make([]float64, len(samples))
	for i, s := range samples {
		v[i] = f(s)
	}
	return summarize(v)
}

// report renders the BENCHMARKS.md section.
func report(o *options, vireo, qemu []sample, qemuVersion string, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n## Memory balloon\n\n", beginMarker)
	fmt.Fprintf(&b, "`go run ./bench/balloon -runs %d -memory %d -balloon %d` (%s). "+
		"Each round boots a fresh %d MiB guest (1 vCPU) with a virtio-balloon device; its kernel runs "+
		"with `init_on_free=1`, so all of its free memory is resident on the host, as in a guest that "+
		"has run for a while. The balloon is inflated by %d MiB with QMP `balloon`, then deflated; each "+
		"time runs from the command to query-balloon reporting the new size. \"Returned\" is how far the "+
		"VMM's RSS fell on inflating. Vireo and QEMU alternate; medians over %d rounds, with the range.\n\n",
		o.runs, o.memMiB, o.balloonMiB, now.UTC().Format("2006-01-02"), o.memMiB, o.balloonMiB, o.runs)
	fmt.Fprintf(&b, "Host: %s. QEMU: %s.\n\n", hostInfo(), qemuVersion)
	b.WriteString("| | Vireo | QEMU | Vireo/QEMU |\n|---|---|---|---|\n")
	secs := func(d time.Duration) float64 { return d.Seconds() }
	rows := []struct {
		name, unit string
		f          func(sample) float64
	}{
		{fmt.Sprintf("inflate %d MiB", o.balloonMiB), "s", func(s sample) float64 { return secs(s.inflate) }},
		{"inflate rate", "MiB/s", func(s sample) float64 { return float64(o.balloonMiB) / max(secs(s.inflate), 1e-9) }},
		{"returned to the host", "MiB", func(s sample) float64 { return float64(s.returned) / (1 << 20) }},
		{fmt.Sprintf("deflate %d MiB", o.balloonMiB), "s", func(s sample) float64 { return secs(s.deflate) }},
	}
	for _, r := range rows {
		v, q := pick(vireo, r.f), pick(qemu, r.f)
		ratio := "-"
		if q.med != 0 {
			ratio = fmt.Sprintf("%.2f", v.med/q.med)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.name, cell(v, r.unit), cell(q, r.unit), ratio)
	}
	b.WriteString("\nOn this development host the guest kernel runs under an instruction emulator: " +
		"both VMMs' times are dominated by the guest driver allocating and freeing pages, so the " +
		"ratio, not the absolute time, compares the VMMs. Both return pages with " +
		"`madvise(MADV_DONTNEED)`.\n")
	fmt.Fprintf(&b, "%s\n", endMarker)
	return b.String()
}

func cell(s summary, unit string) string {
	return fmt.Sprintf("%.2f %s (%.2f–%.2f)", s.med, unit, s.lo, s.hi)
}

// hostInfo names the host: kernel, CPU model, CPUs.
func hostInfo() string {
	kernel := strings.TrimSpace(readFile("/proc/sys/kernel/osrelease"))
	model := "unknown CPU"
	for _, l := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			model = strings.TrimSpace(v)
			break
		}
	}
	return fmt.Sprintf("Linux %s, %s, %d CPUs", kernel, model, runtime.NumCPU())
}

func readFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return string(b)
}

// writeSection replaces the balloon section of the file at path (reading
// it just before writing), or appends it.
func writeSection(path, section string) error {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i >= 0 && j > i {
		s = s[:i] + section + strings.TrimPrefix(s[j+len(endMarker):], "\n")
	} else {
		if s != "" && !strings.HasSuffix(s, "\n\n") {
			s = strings.TrimRight(s, "\n") + "\n\n"
		}
		s += section
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
