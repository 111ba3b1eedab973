package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestThreadCPU(t *testing.T) {
	own, err := readThreads(os.Getpid())
	if err != nil || len(own) == 0 {
		t.Fatalf("readThreads(self) = %v, %v", own, err)
	}
	before := threadCPU{1: time.Second, 2: 2 * time.Second, 3: time.Second}
	after := threadCPU{1: 3 * time.Second, 2: 2500 * time.Millisecond, 4: time.Second} // 3 exited, 4 is new
	c := cpuDelta(before, after, []int{1})
	if c.total != 3500*time.Millisecond || c.vcpu != 2*time.Second || c.other() != 1500*time.Millisecond {
		t.Errorf("cpuDelta = %+v", c)
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
