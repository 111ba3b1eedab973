package harness

import (
	"slices"
	"strings"
	"testing"
)

func TestCPUModel(t *testing.T) {
	info := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: other\n"
	if got := cpuModel(info); got != "AMD EPYC 7B13" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := cpuModel(""); got != "unknown CPU" {
		t.Errorf("cpuModel(empty) = %q", got)
	}
}

func TestFirstLine(t *testing.T) {
	for in, want := range map[string]string{
		"QEMU emulator version 7.2.22\nCopyright": "QEMU emulator version 7.2.22",
		"\n  vireo 0.1.0  \n":                     "vireo 0.1.0",
		"":                                        "unknown",
	} {
		if got := FirstLine(in); got != want {
			t.Errorf("FirstLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHostString(t *testing.T) {
	h := Host{Kernel: "6.1", CPU: "AMD EPYC", NProc: 2, KVM: "kvm_amd (SVM)"}
	if got := h.String(); got != "Linux 6.1, AMD EPYC, 2 CPUs; kvm_amd (SVM)" {
		t.Errorf("String = %q", got)
	}
	h.KVM = ""
	if got := h.String(); strings.Contains(got, ";") {
		t.Errorf("String without KVM = %q", got)
	}
}

func TestLoadAverage(t *testing.T) {
	if got := LoadAverage(); got != "unknown" && len(strings.Fields(got)) != 3 {
		t.Errorf("LoadAverage = %q, want three numbers", got)
	}
}

func TestArgv(t *testing.T) {
	g := Guest{Kernel: "/k", Initrd: "/i", Cmdline: "console=ttyS0 quiet", MemMiB: 128, CPUs: 1}
	q := QEMUArgv("qemu", g, "-qmp", "unix:/s,server=on,wait=off")
	for _, want := range [][]string{{"-M", "microvm"}, {"-m", "128M"}, {"-kernel", "/k"}, {"-initrd", "/i"}, {"-append", g.Cmdline}, {"-qmp", "unix:/s,server=on,wait=off"}} {
		if !hasPair(q, want) {
			t.Errorf("QEMUArgv lacks %v: %v", want, q)
		}
	}
	v := VireoArgv("vireo", g, "--qmp", "unix:/v")
	if v[0] != "vireo" || v[1] != "run" {
		t.Errorf("VireoArgv = %v", v)
	}
	for _, want := range [][]string{{"--memory", "128M"}, {"--kernel", "/k"}, {"--initrd", "/i"}, {"--cmdline", g.Cmdline}, {"--console", "stdio"}, {"--qmp", "unix:/v"}} {
		if !hasPair(v, want) {
			t.Errorf("VireoArgv lacks %v: %v", want, v)
		}
	}
	g.Initrd = ""
	if slices.Contains(VireoArgv("vireo", g), "--initrd") || slices.Contains(QEMUArgv("qemu", g), "-initrd") {
		t.Error("an initrd flag without an initrd")
	}
}

func hasPair(argv, pair []string) bool {
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == pair[0] && argv[i+1] == pair[1] {
			return true
		}
	}
	return false
}
