package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/bench/internal/harness"
)

func TestBenchSet(t *testing.T) {
	var b benchSet
	if err := b.Set("insn, mem"); err != nil || b != (benchSet{insn: true, mem: true}) || b.String() != "insn,mem" {
		t.Errorf("Set(insn, mem): %+v %v", b, err)
	}
	if err := b.Set("all"); err != nil || b != (benchSet{true, true, true}) {
		t.Errorf("Set(all): %+v %v", b, err)
	}
	if err := b.Set("boot,fast"); err == nil {
		t.Error("Set accepted an unknown benchmark")
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.n != 5 || o.vireo != "bin/vireo" || o.memMiB != 128 || o.cpus != 1 || o.benches != (benchSet{true, true, true}) || o.timeout != 3*time.Minute {
		t.Errorf("defaults: %+v", o)
	}
	for _, args := range [][]string{{"-n", "0"}, {"-cpus", "0"}, {"-memory", "1"}, {"-bench", "x"}, {"extra"}, {"-timeout", "0s"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestMarkdown(t *testing.T) {
	o, err := parseFlags([]string{"-n", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	g := harness.Guest{Kernel: "/k/vmlinux", Initrd: "/k/initrd", Cmdline: "console=ttyS0 quiet", MemMiB: 128, CPUs: 1}
	r := report{
		When:    time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
		Command: "go run ./bench -n 2",
		Host:    hostInfo{Host: harness.Host{Kernel: "6.1.0", CPU: "Test CPU", NProc: 2, KVM: "kvm_test"}, GoVersion: "go1.26", QEMUVersion: "QEMU 7.2", VireoVersion: "vireo 0.1"},
		Guest:   g, Tiny: harness.Guest{Kernel: "/tmp/tiny.elf", Cmdline: "console=ttyS0", MemMiB: 128, CPUs: 1},
		Opts: o,
		Res: &results{
			Insn:     pair{Vireo: []float64{10, 12}, QEMU: []float64{40, 44}},
			Boot:     pair{Vireo: []float64{22, 23}, QEMU: []float64{21, 21}},
			Mem:      pair{Vireo: []float64{4, 5}, QEMU: []float64{46, 46}},
			Usage:    map[string][]memUsage{"Vireo": {{Total: 24 << 20, Guest: 20 << 20, Overhead: 4 << 20}}, "QEMU": {{Total: 72 << 20, Guest: 26 << 20, Overhead: 46 << 20, Top: []mapping{{Path: "/usr/bin/qemu", Perms: "r-xp", Rss: 5 << 20}}}}},
			FirstVMM: []string{"Vireo", "QEMU"},
		},
		Vireo: vireoVMM("bin/vireo"), QEMU: qemuVMM("qemu-system-x86_64"),
	}
	md := r.markdown()
	begin, end := harness.Markers(sectionName)
	for _, want := range []string{
		"Linux 6.1.0, Test CPU, 2 CPUs (`nproc`); kvm_test.",
		"- Programs: vireo 0.1; QEMU 7.2; bench built with go1.26.",
		"```sh\ngo run ./bench -n 2\n```",
		"| (a) process start → first guest instruction | 11.0 ms (10.0–12.0) | 42.0 ms (40.0–44.0) | 0.26x | ≤ 0.5x QEMU | yes |",
		"| (b) process start → `VIREO-BOOT-OK` | 22.50 s (22.00–23.00) | 21.00 s (21.00–21.00) | 1.07x | ≤ 1.0x QEMU | no: 1.50 s over (21.00 allowed) |",
		"| (c) VMM memory overhead after boot | 4.5 MiB (4.0–5.0) | 46.0 MiB (46.0–46.0) | 0.10x | Vireo ≤ 10 MiB | yes |",
		"| 2 | QEMU | 12.0 | 44.0 | 23.00 | 21.00 | 5.0 | 46.0 |",
		"| QEMU | 72.0 | 26.0 | 46.0 |",
		"- QEMU: qemu (r-xp) 5.0 (MiB)",
		"bin/vireo run --kernel /k/vmlinux --memory 128M --cpus 1 --cmdline 'console=ttyS0 quiet' --console stdio --no-reboot --initrd /k/initrd",
		"qemu-system-x86_64 -M microvm -enable-kvm",
		"-kernel /tmp/tiny.elf -append console=ttyS0 -no-reboot\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if !strings.HasPrefix(md, begin+"\n## Boot: Vireo beside QEMU\n") || !strings.HasSuffix(md, "</details>\n"+end+"\n") {
		t.Error("section is not framed by its markers")
	}
}
