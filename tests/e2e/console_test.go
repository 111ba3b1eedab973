package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/initramfs"
	"github.com/vireo-vmm/vireo/internal/testutil"
)

// TestVirtioConsoleShell boots with --console virtio and the default
// command line: the guest's console is hvc0 on a virtio console, the shell
// runs on it, and typed input and long output cross it intact.
func TestVirtioConsoleShell(t *testing.T) {
	t.Parallel()
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--console", "virtio", "--no-reboot")...)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)

	if got := g.Run("cat /sys/class/tty/console/active", cmdTimeout); got != "hvc0" {
		t.Errorf("active console %q, want hvc0", got)
	}
	if got := g.Run("cat /proc/consoles", cmdTimeout); !strings.HasPrefix(got, "hvc0") {
		t.Errorf("/proc/consoles:\n%s", got)
	}
	cmdline := g.Run("cat /proc/cmdline", cmdTimeout)
	if !strings.Contains(cmdline, "console=hvc0") || strings.Contains(cmdline, "ttyS0") {
		t.Errorf("kernel command line %q: want console=hvc0 instead of ttyS0", cmdline)
	}
	if got := g.Run("cat /sys/bus/virtio/devices/virtio0/device", cmdTimeout); got != "0x0003" {
		t.Errorf("virtio0 device ID %q, want 0x0003 (console)", got)
	}
	if got := g.Run("echo hello-$((6*7))", cmdTimeout); got != "hello-42" {
		t.Errorf("echo: %q", got)
	}
	// A long typed line (several receive buffers' worth of keystrokes
	// arrive in pieces) and long output.
	long := strings.Repeat("0123456789abcdef", 50) // busybox edits lines of up to 1023 characters
	if got := g.Run("echo "+long+" > /tmp/l; wc -c < /tmp/l", cmdTimeout); got != strconv.Itoa(len(long)+1) {
		t.Errorf("a %d-character line arrived as %q bytes", len(long), got)
	}
	out := g.Run("seq 1 3000", 2*cmdTimeout)
	lines := strings.Split(out, "\n")
	if len(lines) != 3000 || lines[0] != "1" || lines[2999] != "3000" {
		t.Errorf("seq 1 3000 printed %d lines", len(lines))
	}
	g.Send("reboot -f\n")
	if code := g.Wait(cmdTimeout); code != 0 {
		t.Fatalf("exit code %d after reboot -f under --no-reboot, want 0", code)
	}
}

// virtioPortsScript links /dev/virtio-ports/NAME to each named port as
// udev does elsewhere (the test guest has no udev).
const virtioPortsScript = `#!/bin/sh
# Link /dev/virtio-ports/NAME to each named virtio-console port, as udev
# does. A port's name arrives shortly after the port: wait for names a bit.
mkdir -p /dev/virtio-ports
tries=0
while :; do
	missing=0
	for p in /sys/class/virtio-ports/vport*; do
		[ -e "$p" ] || continue
		if [ -r "$p/name" ]; then
			read name < "$p/name"
			[ -n "$name" ] && ln -sf "../${p##*/}" "/dev/virtio-ports/$name"
		else
			missing=1
		fi
	done
	if [ $missing = 0 ] || [ $tries -ge 50 ]; then
		break
	fi
	tries=$((tries+1))
	sleep 0.2
done
`

// channelGuest boots the test guest with one channel named gaName and
// returns its host socket path.
func channelGuest(t *testing.T) (*testutil.Guest, string) {
	t.Helper()
	kernel := requireGuest(t, "vmlinux")
	dir, err := os.MkdirTemp("", "vch") // short: Unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	initrd := filepath.Join(dir, "initrd.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		t.Fatal(err)
	}
	err = initramfs.Build(f, initramfs.Options{Extra: map[string][]byte{
		"etc/vireo-init.d/50-virtio-ports": []byte(virtioPortsScript),
	}})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		testutil.Unavailable(t, "building the test initramfs: %v", err)
	}
	sock := filepath.Join(dir, "ga.sock")
	g := testutil.StartGuest(t, "run", "--kernel", kernel, "--initrd", initrd,
		"--channel", "name="+gaName+",socket="+sock, "--no-reboot")
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	return g, sock
}

const (
	gaName = "org.qemu.guest_agent.0"
	gaPort = "/dev/virtio-ports/" + gaName
)

func dialChannel(t *testing.T, sock string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatalf("connecting to the channel: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readN reads n bytes from c with a deadline, in the background.
func readN(c net.Conn, n int) <-chan []byte {
	ch := make(chan []byte, 1)
	go func() {
		b := make([]byte, n)
		c.SetReadDeadline(time.Now().Add(2 * cmdTimeout))
		k, _ := io.ReadFull(c, b)
		ch <- b[:k]
	}()
	return ch
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestVirtioChannel boots with a qemu-guest-agent channel and checks the
// guest's view of it, bytes both ways (every byte value), and open and
// close signalled both ways.
func TestVirtioChannel(t *testing.T) {
	t.Parallel()
	g, sock := channelGuest(t)
	run := func(cmd string) string {
		t.Helper()
		out := g.Run(cmd, cmdTimeout)
		if strings.Contains(out, "Segmentation fault") {
			out = g.Run(cmd, cmdTimeout)
		}
		return out
	}
	run("/etc/vireo-init.d/50-virtio-ports") // again, in case a name came late
	if got := run("cat /sys/bus/virtio/devices/virtio0/device"); got != "0x0003" {
		t.Errorf("virtio0 device ID %q, want 0x0003", got)
	}
	if got := run("cat /sys/class/virtio-ports/vport0p1/name"); got != gaName {
		t.Errorf("port name %q, want %s", got, gaName)
	}
	if got := run("readlink " + gaPort); got != "../vport0p1" {
		t.Fatalf("%s links to %q", gaPort, got)
	}

	// Host to guest, then the host hangs up: the guest reads everything,
	// then end of file.
	in := make([]byte, 6000)
	for i := range in {
		in[i] = byte(i*7 + i/256)
	}
	c1 := dialChannel(t, sock)
	if _, err := c1.Write(in); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	if got := run("cat " + gaPort + " > /tmp/in; wc -c < /tmp/in"); got != strconv.Itoa(len(in)) {
		t.Fatalf("guest read %s bytes, want %d", got, len(in))
	}
	if got := run("sha256sum /tmp/in"); !strings.HasPrefix(got, sha(in)) {
		t.Errorf("guest's copy differs: %s, want %s", got, sha(in))
	}

	// Guest to host: a guest writer blocks while no host client is there
	// and goes on when one connects.
	run("head -c 50000 /dev/urandom > /tmp/out; cat /tmp/out > " + gaPort + " & true")
	time.Sleep(time.Second)
	c2 := dialChannel(t, sock)
	got := <-readN(c2, 50000)
	if len(got) != 50000 {
		t.Fatalf("host read %d of 50000 bytes", len(got))
	}
	if sum := run("wait; sha256sum /tmp/out"); !strings.HasPrefix(sum, sha(got)) {
		t.Errorf("host's copy differs: guest %s, host %s", sum, sha(got))
	}

	// A second client is refused while c2 is attached.
	c3 := dialChannel(t, sock)
	c3.SetReadDeadline(time.Now().Add(cmdTimeout))
	if n, err := c3.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("second client read %d, %v; want end of file", n, err)
	}

	// Bytes sent while the guest has the port closed wait for it to open;
	// its closing again leaves the client connected.
	if _, err := c2.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if got := run("dd if=" + gaPort + " of=/tmp/ping bs=5 count=1 2>/dev/null; cat /tmp/ping"); got != "ping" {
		t.Errorf("guest read %q, want ping", got)
	}
	// A reader blocked in the guest sees the host's data, then end of file
	// when the host disconnects.
	run("cat " + gaPort + " > /tmp/tail & true")
	time.Sleep(time.Second)
	if _, err := c2.Write([]byte("after reopen\n")); err != nil {
		t.Fatalf("client dropped after the guest closed the port: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	c2.Close()
	if got := run("wait; cat /tmp/tail"); got != "after reopen" {
		t.Errorf("blocked reader got %q", got)
	}
	// With no client the guest reads end of file at once.
	if got := run(fmt.Sprintf("cat %s > /tmp/none; wc -c < /tmp/none", gaPort)); got != "0" {
		t.Errorf("read with no host client: %q bytes", got)
	}
	g.Send("reboot -f\n")
	if code := g.Wait(cmdTimeout); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind after exit: %v", err)
	}
}
