package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	line := "1234 (vireo (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0"
	d, err := parseStat(line)
	if err != nil || d != 325*clockTick {
		t.Fatalf("parseStat = %v, %v; want 3.25s", d, err)
	}
	for _, bad := range []string{"", "1 (x S 1", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a b"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
	if _, err := statTime("/proc/self/stat"); err != nil {
		t.Errorf("own stat: %v", err)
	}
	c := cpuTimes{total: 5 * time.Second, vcpu: 3 * time.Second}
	if c.other() != 2*time.Second || c.sub(cpuTimes{total: time.Second, vcpu: time.Second}) != (cpuTimes{total: 4 * time.Second, vcpu: 2 * time.Second}) {
		t.Error("cpuTimes arithmetic")
	}
}

func TestReportAndSection(t *testing.T) {
	o := &options{cache: "writeback", runs: 2, mib: 8, seconds: 1, depth: 32, memMiB: 256, imageMiB: 64, vireo: "/nonexistent", qemu: "/nonexistent"}
	mk := func(name string, rate float64, cpu time.Duration) *subject {
		s := &subject{name: name, res: make([][]sample, len(tests))}
		for i := range tests {
			s.res[i] = []sample{{rate: rate, bytes: 1 << 30, cpu: cpuTimes{total: cpu, vcpu: cpu / 2}}, {rate: rate * 1.1, bytes: 1 << 30, cpu: cpuTimes{total: cpu, vcpu: cpu / 2}}}
		}
		return s
	}
	sec := report(o, []*subject{mk("Vireo", 130, time.Second), mk("QEMU", 100, 2*time.Second)}, time.Unix(0, 0))
	for _, want := range []string{beginMarker, endMarker, "| sequential read (MB/s) | 136.5 (130.0–143.0) | 105.0 (100.0–110.0) | 1.30x | ≥ 1.2x | met |",
		"CPU s/GiB, whole process | 1.00 (1.00–1.00) | 2.00 (2.00–2.00) | 0.50x", "-cache writeback -runs 2 -mib 8"} {
		if !strings.Contains(sec, want) {
			t.Errorf("report lacks %q:\n%s", want, sec)
		}
	}
	p := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(p, []byte("# Title\n\n<!-- other:begin -->\nx\n<!-- other:end -->\n"), 0o644)
	if err := writeSection(p, beginMarker+"\none\n"+endMarker+"\n"); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(p, beginMarker+"\ntwo\n"+endMarker+"\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if got := string(b); got != "# Title\n\n<!-- other:begin -->\nx\n<!-- other:end -->\n\n"+beginMarker+"\ntwo\n"+endMarker+"\n" {
		t.Errorf("file after two writes:\n%s", got)
	}
}
