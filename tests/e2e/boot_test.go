// Package e2e boots the real guest kernel under the vireo binary and checks
// what a user sees on the console. The tests need /dev/kvm and the test
// guest (../shared/guest or the guest/build-kernel.sh cache): without them
// they skip, except under CI=true where they fail.
package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/testutil"
)

// A guest kernel runs ~1 µs per instruction on the development host, and
// several guests may boot at once on 2 cores: generous timeouts.
const (
	bootTimeout = 6 * time.Minute
	cmdTimeout  = 60 * time.Second
	prompt      = `~ # `
)

func requireGuest(t *testing.T, kernel string) string {
	t.Helper()
	testutil.RequireKVM(t)
	return testutil.GuestFile(t, kernel)
}

// guestArgs are the `vireo run` arguments for the test guest.
func guestArgs(t *testing.T, kernel string, extra ...string) []string {
	args := []string{"run", "--kernel", requireGuest(t, kernel), "--initrd", testutil.DefaultInitrd(t)}
	return append(args, extra...)
}

// TestBootPVHTwoCPUs boots vmlinux through PVH with 2 vCPUs, checks the
// shell, the CPU count and the clock source, and ends the VM from inside
// under --no-reboot (exit code 0).
func TestBootPVHTwoCPUs(t *testing.T) {
	t.Parallel()
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--cpus", "2", "--memory", "256M", "--no-reboot")...)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)

	if got := g.Run("nproc", cmdTimeout); got != "2" {
		t.Errorf("nproc = %q, want 2", got)
	}
	if got := g.Run("cat /sys/devices/system/clocksource/clocksource0/current_clocksource", cmdTimeout); got != "kvm-clock" {
		t.Errorf("clocksource = %q, want kvm-clock", got)
	}
	if got := g.Run("grep -c ^processor /proc/cpuinfo", cmdTimeout); got != "2" {
		t.Errorf("/proc/cpuinfo processors = %q, want 2", got)
	}
	mem := g.Run("grep MemTotal /proc/meminfo", cmdTimeout)
	if !strings.Contains(mem, "MemTotal") {
		t.Errorf("meminfo: %q", mem)
	}
	// Work done in guest user space on both CPUs comes back intact.
	if got := g.Run("echo $((6*7))", cmdTimeout); got != "42" {
		t.Errorf("arithmetic = %q", got)
	}
	g.Send("reboot -f\n")
	if code := g.Wait(cmdTimeout); code != 0 {
		t.Fatalf("exit code %d after reboot -f under --no-reboot, want 0", code)
	}
}

// TestBootPVHRebootComesBack boots with 1 vCPU and no --no-reboot: the
// guest resets itself through the i8042 and boots again; Ctrl-A x then
// ends vireo with status 0.
func TestBootPVHRebootComesBack(t *testing.T) {
	t.Parallel()
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--cpus", "1", "--memory", "128M")...)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	if got := g.Run("nproc", cmdTimeout); got != "1" {
		t.Errorf("nproc = %q, want 1", got)
	}
	g.Run("echo first-boot > /tmp/mark", cmdTimeout)
	g.Send("reboot -f\n")
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	// A fresh boot: the tmpfs file of the first boot is gone.
	if got := g.Run("cat /tmp/mark 2>/dev/null || echo none", cmdTimeout); got != "none" {
		t.Errorf("after reboot /tmp/mark = %q, want none", got)
	}
	g.Send("\x01x")
	if code := g.Wait(cmdTimeout); code != 0 {
		t.Fatalf("exit code %d after Ctrl-A x, want 0", code)
	}
}

// TestBootBzImageTripleFault boots the bzImage through the 64-bit boot
// protocol and resets by triple fault (reboot=t loads an empty IDT and
// executes INT3). On real hardware that is a triple fault, which ends vireo
// with status 0 under --no-reboot. This development host's KVM cannot
// emulate INT3 in guest kernel mode: there vireo must stop with one clear
// error naming the vCPU, RIP and instruction bytes, and a non-zero status.
func TestBootBzImageTripleFault(t *testing.T) {
	t.Parallel()
	cmdline := strings.Replace(testutil.DefaultCmdline(t), "reboot=k", "reboot=t", 1)
	g := testutil.StartGuest(t, guestArgs(t, "bzImage", "--cmdline", cmdline, "--no-reboot")...)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	if got := g.Run("uname -s", cmdTimeout); got != "Linux" {
		t.Errorf("uname -s = %q", got)
	}
	if got := g.Run("cat /sys/devices/system/clocksource/clocksource0/current_clocksource", cmdTimeout); got != "kvm-clock" {
		t.Errorf("clocksource = %q, want kvm-clock", got)
	}
	g.Send("reboot -f\n")
	code := g.Wait(cmdTimeout)
	if code == 0 {
		return // a real triple fault
	}
	errText := g.Stderr()
	for _, want := range []string{"vCPU 0", "emulation failure", "RIP 0x", "instruction bytes cc"} {
		if !strings.Contains(errText, want) {
			t.Errorf("exit %d; stderr lacks %q: %s", code, want, errText)
		}
	}
	if n := strings.Count(strings.TrimSpace(errText), "\n"); n != 0 {
		t.Errorf("error is %d lines, want one: %s", n+1, errText)
	}
}
