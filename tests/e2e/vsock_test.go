package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/vsock/vsocktest"
	"github.com/vireo-vmm/vireo/internal/testutil"
)

// Sizes of the vsock echo runs: vsockConns connections in each direction,
// each carrying vsockBytes of its own pseudo-random stream both ways.
const (
	vsockConns = 50
	vsockBytes = 256 << 10
	vsockWait  = 10 * time.Minute
)

// vsockGuest boots the test guest with vsockecho in its initramfs and a
// vsock device whose host socket is returned. With fc set, the VM is
// described by a Firecracker config file (vsock from its "vsock" section)
// instead of flags.
func vsockGuest(t *testing.T, fc bool, extra ...string) (*testutil.Guest, string) {
	t.Helper()
	kernel := requireGuest(t, "vmlinux")
	dir, err := os.MkdirTemp("", "vsk") // short: Unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := vsocktest.Initrd(initrd, nil); errors.Is(err, vsocktest.ErrNoCompiler) {
		testutil.Unavailable(t, "%v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	uds := filepath.Join(dir, "v.sock")
	args := append([]string{"run", "--kernel", kernel, "--initrd", initrd, "--vsock", "cid=3,uds=" + uds, "--no-reboot"}, extra...)
	if fc {
		cfg, _ := json.Marshal(map[string]any{
			"boot-source": map[string]any{
				"kernel_image_path": kernel,
				"initrd_path":       initrd,
				"boot_args":         testutil.DefaultCmdline(t),
			},
			"machine-config": map[string]any{"vcpu_count": 1, "mem_size_mib": 128},
			"vsock":          map[string]any{"guest_cid": 3, "uds_path": uds},
		})
		cfgPath := filepath.Join(dir, "vm.json")
		if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		args = []string{"run", "--config-file", cfgPath}
	}
	g := testutil.StartGuest(t, args...)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	return g, uds
}

// stream is connection i's data: distinct per connection and direction.
func stream(i, n int) []byte {
	b := make([]byte, n)
	x := uint32(i)*2654435761 + 12345
	for k := range b {
		x = x*1664525 + 1013904223
		b[k] = byte(x >> 24)
	}
	return b
}

// echoCheck sends want on c, half-closes, and checks that exactly want
// comes back before the end of the stream.
func echoCheck(c net.Conn, r io.Reader, want []byte) error {
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		if err == nil {
			err = c.(*net.UnixConn).CloseWrite()
		}
		errc <- err
	}()
	c.SetReadDeadline(time.Now().Add(vsockWait))
	got, err := io.ReadAll(r)
	if werr := <-errc; werr != nil {
		return fmt.Errorf("writing: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("reading after %d bytes: %w", len(got), err)
	}
	if !bytes.Equal(got, want) {
		n := 0
		for n < len(got) && n < len(want) && got[n] == want[n] {
			n++
		}
		return fmt.Errorf("echo of %d bytes came back as %d bytes, first difference at %d", len(want), len(got), n)
	}
	return nil
}

// vsockConnect opens a host-initiated connection through the device's
// socket with Firecracker's protocol; it returns the connection, a reader
// positioned after the "OK <port>" line, and the port.
func vsockConnect(uds string, port uint32) (net.Conn, *bufio.Reader, string, error) {
	c, err := net.Dial("unix", uds)
	if err != nil {
		return nil, nil, "", err
	}
	fmt.Fprintf(c, "CONNECT %d\n", port)
	c.SetReadDeadline(time.Now().Add(vsockWait))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, nil, "", fmt.Errorf("no OK line (%q): %w", line, err)
	}
	return c, r, line, nil
}

// TestVsock boots one guest and runs vsock traffic both ways: 50 host
// connections to a guest echo server, 50 guest connections to a host echo
// server, each with its own 256 KiB stream that must come back whole and
// in order; then refused connections in both directions.
func TestVsock(t *testing.T) {
	t.Parallel()
	g, uds := vsockGuest(t, false)
	if got := g.Run("cat /sys/bus/virtio/devices/virtio0/device", cmdTimeout); got != "0x0013" {
		t.Fatalf("virtio0 device ID = %q, want 0x0013 (vsock)", got)
	}

	// Host to guest: CONNECT to the guest's echo server.
	start := time.Now()
	g.Send("vsockecho serve 52 &\n")
	g.Expect("vsockecho: serve on 52", cmdTimeout)
	var wg sync.WaitGroup
	errs := make(chan error, 2*vsockConns)
	ports := make(chan string, vsockConns)
	for i := range vsockConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, r, ok, err := vsockConnect(uds, 52)
			if err != nil {
				errs <- fmt.Errorf("host connection %d: %w", i, err)
				return
			}
			defer c.Close()
			ports <- ok
			if err := echoCheck(c, r, stream(i, vsockBytes)); err != nil {
				errs <- fmt.Errorf("host connection %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("host-initiated echo: %d connections in %v", vsockConns, time.Since(start).Round(time.Millisecond))
	close(ports)
	seen := map[string]bool{}
	for p := range ports {
		if !strings.HasPrefix(p, "OK ") || seen[p] {
			t.Errorf("acknowledgement %q (duplicate or malformed)", p)
		}
		seen[p] = true
	}

	// Guest to host: the guest dials CID 2 port 1234, served at uds_1234.
	l, err := net.Listen("unix", uds+"_1234")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Accept all the guest's connections before sending: the guest dials
	// them one after the other, and data on the first would slow the
	// handshakes of the rest.
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		conns := make([]net.Conn, 0, vsockConns)
		for i := range vsockConns {
			c, err := l.Accept()
			if err != nil {
				errs <- fmt.Errorf("accepting guest connection %d: %w", i, err)
				break
			}
			conns = append(conns, c)
		}
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if err := echoCheck(c, c, stream(1000+i, vsockBytes)); err != nil {
					errs <- fmt.Errorf("guest connection %d: %w", i, err)
				}
			}()
		}
	}()
	start = time.Now()
	g.Send(fmt.Sprintf("vsockecho dial 1234 %d\n", vsockConns))
	g.Expect(fmt.Sprintf("vsockecho: dialed %d", vsockConns), vsockWait)
	g.Expect("vsockecho: dial done", vsockWait)
	<-accepted
	wg.Wait()
	t.Logf("guest-initiated echo: %d connections in %v", vsockConns, time.Since(start).Round(time.Millisecond))
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Refusals: no guest listener on 53 (the guest answers RST, Vireo
	// closes the host connection); no host listener on uds_4321.
	if c, _, line, err := vsockConnect(uds, 53); err == nil {
		c.Close()
		t.Errorf("CONNECT to a port nobody listens on was acknowledged: %q", line)
	}
	if out := g.Run("vsockecho dial 4321 1", cmdTimeout); !strings.Contains(out, "connect: Connection reset by peer") {
		t.Errorf("guest connect to a host port without a listener: %q", out)
	}

	g.Send("reboot -f\n")
	if code := g.Wait(cmdTimeout); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if _, err := os.Stat(uds); !os.IsNotExist(err) {
		t.Errorf("host socket left behind: %v", err)
	}
}

// TestVsockFirecrackerConfig boots from a Firecracker config file whose
// "vsock" section (guest_cid, uds_path) adds the device, and checks one
// stream each way.
func TestVsockFirecrackerConfig(t *testing.T) {
	t.Parallel()
	g, uds := vsockGuest(t, true)
	g.Send("vsockecho serve 52 &\n")
	g.Expect("vsockecho: serve on 52", cmdTimeout)
	c, r, _, err := vsockConnect(uds, 52)
	if err != nil {
		t.Fatal(err)
	}
	if err := echoCheck(c, r, stream(7, 64<<10)); err != nil {
		t.Error(err)
	}
	c.Close()

	l, err := net.Listen("unix", uds+"_52")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		done <- echoCheck(c, c, stream(8, 64<<10))
	}()
	g.Send("vsockecho dial 52 1\n")
	g.Expect("vsockecho: dial done", vsockWait)
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// echoSome sends b on an open connection and reads it back, leaving the
// connection open.
func echoSome(c net.Conn, r io.Reader, b []byte) error {
	if _, err := c.Write(b); err != nil {
		return err
	}
	got := make([]byte, len(b))
	c.SetReadDeadline(time.Now().Add(vsockWait))
	if _, err := io.ReadFull(r, got); err != nil {
		return err
	}
	if !bytes.Equal(got, b) {
		return fmt.Errorf("echo of %d bytes differs", len(b))
	}
	return nil
}

// TestVsockSnapshot: a snapshot closes the open vsock streams of the
// running VM, whose guest is told with a transport reset and keeps its
// listener; a VM restored from the snapshot (after the original is gone,
// on the same socket path) gets the reset too, and serves new streams.
func TestVsockSnapshot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	qmp := filepath.Join(dir, "qmp.sock")
	snap := filepath.Join(dir, "snap")
	g, uds := vsockGuest(t, false, "--qmp", "unix:"+qmp)
	g.Send("vsockecho serve 52 &\n")
	g.Expect("vsockecho: serve on 52", cmdTimeout)
	held, r, _, err := vsockConnect(uds, 52)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := echoSome(held, r, stream(1, 4096)); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := testutil.RunVireo(t, 2*time.Minute, "snapshot", "create", "--qmp", "unix:"+qmp, snap)
	if code != 0 {
		t.Fatalf("snapshot create: exit %d: %s", code, stderr)
	}
	t.Logf("%s", strings.TrimSpace(out))
	// The running VM: the open stream is gone on both sides, the
	// listener still answers.
	held.SetReadDeadline(time.Now().Add(vsockWait))
	if n, err := r.Read(make([]byte, 1)); err == nil {
		t.Errorf("the stream open during the snapshot still reads (%d bytes)", n)
	}
	g.Expect("vsockecho: connection error", cmdTimeout)
	c, r2, _, err := vsockConnect(uds, 52)
	if err != nil {
		t.Fatalf("new connection after the snapshot: %v", err)
	}
	if err := echoCheck(c, r2, stream(2, 16<<10)); err != nil {
		t.Error(err)
	}
	c.Close()
	g.Process().Kill()
	g.Wait(cmdTimeout)

	// The restored VM reuses the socket path left behind by the killed
	// original; its guest had the stream open in the saved memory.
	rg := testutil.StartGuest(t, "run", "--restore", snap, "--no-reboot")
	rg.Expect("vsockecho: connection error", vsockWait)
	c, r3, _, err := vsockConnect(uds, 52)
	if err != nil {
		t.Fatalf("connection to the restored VM: %v", err)
	}
	if err := echoCheck(c, r3, stream(3, 16<<10)); err != nil {
		t.Error(err)
	}
	c.Close()
	rg.Send("reboot -f\n")
	if code := rg.Wait(cmdTimeout); code != 0 {
		t.Fatalf("restored VM exit code %d, want 0", code)
	}
}
