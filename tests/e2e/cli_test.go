package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/testutil"
)

// checkOneLineError asserts a failed run printed exactly one line on stderr
// that contains want, and no panic or stack trace.
func checkOneLineError(t *testing.T, code int, stderr, want string) {
	t.Helper()
	if code == 0 {
		t.Fatalf("exit code 0, want non-zero; stderr %q", stderr)
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 1 {
		t.Errorf("stderr has %d lines, want 1:\n%s", len(lines), stderr)
	}
	if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
		t.Errorf("stderr shows a panic or stack trace:\n%s", stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not mention %q", stderr, want)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "notes.txt")
	os.WriteFile(notKernel, []byte("this is not a kernel\n"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)

	noKVM := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"run", "--frobnicate"}, "flag provided but not defined: -frobnicate"},
		{"unknown command", []string{"fly"}, `unknown command "fly"`},
		{"zero cpus", []string{"run", "--kernel", notKernel, "--cpus", "0"}, "0 vCPUs"},
		{"1000 cpus", []string{"run", "--kernel", notKernel, "--cpus", "1000"}, "1000 vCPUs"},
		{"bad memory size", []string{"run", "--kernel", notKernel, "--memory", "lots"}, `invalid size "lots"`},
		{"missing kernel", []string{"run", "--kernel", filepath.Join(dir, "nope")}, "no such file"},
		{"kernel is a directory", []string{"run", "--kernel", dir}, "is a directory"},
		{"bad console", []string{"run", "--kernel", notKernel, "--console", "telnet:1"}, "console"},
		{"stray argument", []string{"run", "extra"}, `unexpected argument "extra"`},
	}
	for _, c := range noKVM {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := testutil.RunVireo(t, 30*time.Second, c.args...)
			checkOneLineError(t, code, stderr, c.want)
		})
	}

	t.Run("memory larger than the host", func(t *testing.T) {
		code, _, stderr := testutil.RunVireo(t, 30*time.Second, "run", "--kernel", notKernel, "--memory", "64T")
		checkOneLineError(t, code, stderr, "this host has")
	})

	withKVM := []struct {
		name   string
		kernel string
		want   string
	}{
		{"not a kernel", notKernel, "neither an ELF vmlinux nor a bzImage"},
		{"empty file", empty, "kernel"},
	}
	for _, c := range withKVM {
		t.Run(c.name, func(t *testing.T) {
			testutil.RequireKVM(t)
			code, _, stderr := testutil.RunVireo(t, 30*time.Second, "run", "--kernel", c.kernel)
			checkOneLineError(t, code, stderr, c.want)
		})
	}

	t.Run("kernel larger than RAM", func(t *testing.T) {
		kernel := requireGuest(t, "vmlinux")
		code, _, stderr := testutil.RunVireo(t, 30*time.Second, "run", "--kernel", kernel, "--memory", "16M")
		checkOneLineError(t, code, stderr, "kernel")
	})

	t.Run("no permission on /dev/kvm", func(t *testing.T) {
		testutil.RequireKVM(t)
		if os.Geteuid() != 0 {
			t.Skip("needs root to run vireo as an unprivileged user")
		}
		if st, err := os.Stat("/dev/kvm"); err != nil || st.Mode().Perm()&0o006 != 0 {
			t.Skip("/dev/kvm is world-accessible here")
		}
		bin := testutil.VireoBinary(t)
		kdir := t.TempDir()
		os.Chmod(kdir, 0o755)
		k := filepath.Join(kdir, "k")
		os.WriteFile(k, []byte("x"), 0o644)
		cmd := exec.Command(bin, "run", "--kernel", k)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		checkOneLineError(t, code, stderr.String(), "permission denied")
	})
}

func TestVersionAndHostCheck(t *testing.T) {
	code, out, _ := testutil.RunVireo(t, 10*time.Second, "version")
	if code != 0 || !strings.HasPrefix(out, "vireo ") {
		t.Errorf("version: code %d, out %q", code, out)
	}
	testutil.RequireKVM(t)
	code, out, stderr := testutil.RunVireo(t, 30*time.Second, "host-check")
	if code != 0 {
		t.Fatalf("host-check exit %d: %s", code, stderr)
	}
	for _, want := range []string{"KVM: /dev/kvm usable", "in-kernel irqchip (IRQCHIP)", "CPUID: x2apic", "KSM", "transparent huge pages", "/dev/vhost-net"} {
		if !strings.Contains(out, want) {
			t.Errorf("host-check output lacks %q:\n%s", want, out)
		}
	}
}
