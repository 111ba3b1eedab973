package e2e

import (
	"regexp"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/testutil"
)

// TestVirtioRNG boots with --rng: the guest's virtio_mmio driver finds the
// device from the command line, virtio_rng becomes the current hardware
// RNG, and /dev/hwrng returns distinct random bytes served through the
// ioeventfd/irqfd path.
func TestVirtioRNG(t *testing.T) {
	t.Parallel()
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--rng", "--no-reboot")...)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)

	if got := g.Run("cat /sys/class/misc/hw_random/rng_current", cmdTimeout); !strings.HasPrefix(got, "virtio_rng") {
		t.Fatalf("rng_current = %q, want virtio_rng.N", got)
	}
	if got := g.Run("cat /sys/bus/virtio/devices/virtio0/device", cmdTimeout); got != "0x0004" {
		t.Errorf("virtio0 device ID = %q, want 0x0004", got)
	}
	// Files rather than pipes: reads go straight to /dev/hwrng.
	hexBytes := regexp.MustCompile(`\b[0-9a-f]{2}\b`)
	read := func(name string) string {
		t.Helper()
		out := g.Run("head -c 64 /dev/hwrng > /tmp/"+name+" && od -An -v -tx1 /tmp/"+name, cmdTimeout)
		if n := len(hexBytes.FindAllString(out, -1)); n != 64 {
			t.Fatalf("read %d bytes from /dev/hwrng, want 64:\n%s", n, out)
		}
		return out
	}
	if a, b := read("a"), read("b"); a == b {
		t.Errorf("two reads of /dev/hwrng returned the same bytes:\n%s", a)
	}
	if got := g.Run("head -c 100000 /dev/hwrng > /tmp/big && wc -c < /tmp/big", cmdTimeout); got != "100000" {
		t.Errorf("a 100000-byte read returned %q bytes", got)
	}
	irqs := g.Run("grep virtio /proc/interrupts", cmdTimeout)
	if f := strings.Fields(irqs); len(f) < 2 || f[1] == "0" {
		t.Errorf("no virtio interrupts delivered: %q", irqs)
	}
	g.Send("reboot -f\n")
	if code := g.Wait(cmdTimeout); code != 0 {
		t.Fatalf("exit code %d after reboot -f under --no-reboot, want 0", code)
	}
}

// TestVirtioRNGRateLimited boots with a small rate limit: reads larger
// than the bucket still complete, served in rate-limited pieces.
func TestVirtioRNGRateLimited(t *testing.T) {
	t.Parallel()
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--rng=rate=2048,burst=256", "--no-reboot")...)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	if got := g.Run("head -c 4096 /dev/hwrng > /tmp/r && wc -c < /tmp/r", cmdTimeout); got != "4096" {
		t.Errorf("read %q bytes from a rate-limited /dev/hwrng, want 4096", got)
	}
	g.Send("reboot -f\n")
	if code := g.Wait(cmdTimeout); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}
