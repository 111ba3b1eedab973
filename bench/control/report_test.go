package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/bench/internal/harness"
)

func testReport(vireoQMP, qemuQMP []float64) *report {
	o := &options{n: len(vireoQMP), block: 2, warmup: 10, runs: 2}
	return &report{
		When:      time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC),
		Command:   "go run ./bench/control -vireo bin/vireo -out BENCHMARKS.md",
		Host:      harness.Host{Kernel: "6.18", CPU: "AMD EPYC", NProc: 2},
		LoadStart: "1.00 2.00 3.00",
		LoadEnd:   "4.00 5.00 6.00",
		Vireo:     "vireo 0.1.0-dev",
		QEMU:      "QEMU emulator version 7.2.22",
		Guest:     harness.Guest{Kernel: "/g/vmlinux", Initrd: "/g/initrd.cpio", Cmdline: "console=ttyS0", MemMiB: 128, CPUs: 1},
		Opts:      o,
		QMP: &qmpResults{
			Vireo: vireoQMP, QEMU: qemuQMP, Blocks: 2, FirstVMM: "Vireo",
			VireoArgv: []string{"bin/vireo", "run", "--qmp", "unix:/tmp/v.qmp"},
			QEMUArgv:  []string{"qemu-system-x86_64", "-qmp", "unix:/tmp/q.qmp,server=on,wait=off"},
		},
		Start: &startResults{
			APIReady: []float64{10, 12}, Configure: []float64{1, 3}, StartReply: []float64{20, 30},
			APIToMarker: []float64{13000, 14000}, APIExecToMarker: []float64{13100, 14100},
			CLIToMarker: []float64{13500, 14500},
			FirstWay:    []string{"API", "CLI"},
			APIArgv:     []string{"bin/vireo", "run", "--api-sock", "/tmp/fc.sock", "--console", "stdio"},
			CLIArgv:     []string{"bin/vireo", "run", "--kernel", "/g/vmlinux"},
		},
	}
}

func TestMarkdown(t *testing.T) {
	r := testReport([]float64{40, 50, 60, 1000}, []float64{80, 100, 120, 130})
	md := r.markdown()
	begin, end := harness.Markers("control")
	if !strings.HasPrefix(md, begin+"\n## Control plane") || !strings.HasSuffix(md, end+"\n") {
		t.Errorf("markers:\n%s", md)
	}
	for _, want := range []string{
		"Measured 2026-11-21 05:00 UTC",
		"```sh\ngo run ./bench/control -vireo bin/vireo -out BENCHMARKS.md\n```",
		"load average (1, 5, 15 min) 1.00 2.00 3.00 at the start and 4.00 5.00 6.00 at the end",
		"vireo 0.1.0-dev; QEMU emulator version 7.2.22",
		"| **median** | 55.0 µs | 110.0 µs | 0.50x |",
		"| maximum | 1.00 ms | 130.0 µs | 7.69x |",
		"Target: Vireo's median at most 1.0x QEMU's: met (0.50x).",
		"| **API**: InstanceStart request → `VIREO-BOOT-OK` | 13.50 s (13.00–14.00) |",
		"| **CLI**: `vireo run` exec → `VIREO-BOOT-OK` | 14.00 s (13.50–14.50) |",
		"| API/CLI (medians) | 0.96x |",
		"| API: InstanceStart request → its 204 reply | 25.0 ms (20.0–30.0) |",
		"| 2 | CLI | 14.00 | 14.50 | 12.0 | 3.0 | 30.0 |",
		"2 runs each way",
		"<summary>Per-run numbers, command lines</summary>",
		"bin/vireo run --qmp unix:/tmp/v.qmp\nqemu-system-x86_64 -qmp unix:/tmp/q.qmp,server=on,wait=off\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("section lacks %q:\n%s", want, md)
		}
	}
}

func TestMarkdownMissedTarget(t *testing.T) {
	r := testReport([]float64{200, 220}, []float64{100, 100})
	r.Start = nil
	md := r.markdown()
	if !strings.Contains(md, "**not met** (2.10x)") {
		t.Errorf("missed target not reported:\n%s", md)
	}
	if strings.Contains(md, "InstanceStart") || !strings.Contains(md, "<summary>Command lines</summary>") {
		t.Errorf("start section without start results:\n%s", md)
	}
}

func TestMarkdownStartOnly(t *testing.T) {
	r := testReport(nil, nil)
	r.QMP, r.QEMU = nil, ""
	md := r.markdown()
	if strings.Contains(md, "query-status") || strings.Contains(md, "QEMU emulator") {
		t.Errorf("QMP section without QMP results:\n%s", md)
	}
	if !strings.Contains(md, "Programs: vireo 0.1.0-dev.\n") {
		t.Errorf("programs line:\n%s", md)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.n != 2000 || o.runs != 5 || o.block != 100 || !o.qmp || !o.start || o.out != "" {
		t.Errorf("defaults = %+v", o)
	}
	o, err = parseFlags([]string{"-bench", "qmp", "-n", "10", "-out", "B.md"}, io.Discard)
	if err != nil || !o.qmp || o.start || o.n != 10 || o.out != "B.md" {
		t.Errorf("flags = %+v, %v", o, err)
	}
	for _, bad := range [][]string{
		{"-bench", "boot"}, {"-n", "0"}, {"-block", "0"}, {"-runs", "0"},
		{"-memory", "8"}, {"-timeout", "0s"}, {"-warmup", "-1"}, {"stray"}, {"-nope"},
	} {
		if _, err := parseFlags(bad, io.Discard); !errors.Is(err, harness.ErrUsage) {
			t.Errorf("parseFlags(%v) = %v, want ErrUsage", bad, err)
		}
	}
}

func TestCheckStatusReply(t *testing.T) {
	for line, ok := range map[string]bool{
		`{"return": {"status": "running", "singlestep": false, "running": true}}`: true,
		`{"return": {"status": "paused", "singlestep": false, "running": false}}`: false,
		`{"error": {"class": "GenericError", "desc": "x"}}`:                       false,
		`{"return": `: false,
	} {
		if err := checkStatusReply([]byte(line)); (err == nil) != ok {
			t.Errorf("checkStatusReply(%s) = %v", line, err)
		}
	}
}
