package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	if s := summarize([]float64{3, 1, 2}); s != (summary{2, 1, 3}) {
		t.Errorf("odd: %+v", s)
	}
	if s := summarize([]float64{4, 1, 2, 3}); s != (summary{2.5, 1, 4}) {
		t.Errorf("even: %+v", s)
	}
	if s := summarize(nil); s != (summary{}) {
		t.Errorf("empty: %+v", s)
	}
}

func TestReportAndSection(t *testing.T) {
	o := &options{runs: 2, memMiB: 128, balloonMiB: 32}
	v := []sample{{inflate: 2 * time.Second, deflate: time.Second, returned: 30 << 20}, {inflate: 4 * time.Second, deflate: time.Second, returned: 28 << 20}}
	q := []sample{{inflate: 6 * time.Second, deflate: 2 * time.Second, returned: 31 << 20}, {inflate: 6 * time.Second, deflate: 2 * time.Second, returned: 31 << 20}}
	s := report(o, v, q, "QEMU emulator version 7.2", time.Unix(0, 0))
	for _, want := range []string{beginMarker, endMarker, "| inflate 32 MiB | 3.00 s (2.00–4.00) | 6.00 s (6.00–6.00) | 0.50 |", "| returned to the host | 29.00 MiB", "go run ./bench/balloon -runs 2"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	p := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(p, []byte("# Benchmarks\n\n<!-- boot:begin -->\nboot\n<!-- boot:end -->\n"), 0o644)
	if err := writeSection(p, "<!-- balloon:begin -->\nA\n<!-- balloon:end -->\n"); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(p, "<!-- balloon:begin -->\nB\n<!-- balloon:end -->\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if want := "# Benchmarks\n\n<!-- boot:begin -->\nboot\n<!-- boot:end -->\n\n<!-- balloon:begin -->\nB\n<!-- balloon:end -->\n"; string(b) != want {
		t.Errorf("file:\n%s", b)
	}
}
