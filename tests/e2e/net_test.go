package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/net/netguest"
	"github.com/vireo-vmm/vireo/internal/testutil"
)

// The virtio-net tests run each guest's TAP in a network namespace of its
// own, created and removed by the test: the host's own networking is never
// touched and traffic only flows between these two addresses.
const (
	netHostIP  = "10.77.0.1"
	netGuestIP = "10.77.0.2"
	// netBootTimeout is longer than bootTimeout: these guests boot a
	// larger initramfs, often beside other busy guests.
	netBootTimeout = 10 * time.Minute
	netCmdTimeout  = 3 * time.Minute
)

// netBytes is the size of each bulk transfer: VIREO_E2E_NET_BYTES, or
// 8 MiB. Guest kernel code is emulated on the development host, where TCP
// moves well under 1 MB/s; set it to 1073741824 for the 1 GiB run on
// hardware that can afford it.
func netBytes(t *testing.T) int64 {
	if s := os.Getenv("VIREO_E2E_NET_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("VIREO_E2E_NET_BYTES=%q is not a positive byte count", s)
		}
		return n
	}
	return 8 << 20
}

// transferTimeout allows 16 KiB/s at worst, and at least 10 minutes.
func transferTimeout(n int64) time.Duration {
	return max(10*time.Minute, time.Duration(n/(16<<10))*time.Second)
}

var (
	netInitrdOnce sync.Once
	netInitrdPath string
	netInitrdErr  error
)

// netInitrd is the busybox guest with vnetperf and an init script that
// gives eth0 its address, built once per test binary.
func netInitrd(t *testing.T) string {
	t.Helper()
	netInitrdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vireo-net-e2e-")
		if err != nil {
			netInitrdErr = err
			return
		}
		bin, err := netguest.Build(dir)
		if err != nil {
			netInitrdErr = err
			return
		}
		netInitrdPath = filepath.Join(dir, "initrd.cpio")
		script := "#!/bin/sh\nip addr add " + netGuestIP + "/24 dev eth0 && ip link set eth0 up && echo NET-UP\n"
		netInitrdErr = netguest.Initramfs(netInitrdPath, bin, map[string][]byte{"/etc/vireo-init.d/10-net": []byte(script)})
	})
	if netInitrdErr != nil {
		testutil.Unavailable(t, "cannot build the network test guest: %v", netInitrdErr)
	}
	return netInitrdPath
}

// netns is a network namespace made for one test.
type netns struct {
	t    *testing.T
	name string
}

var netnsSeq struct {
	sync.Mutex
	n int
}

// newNetns creates a namespace and removes it (with every interface in
// it) when the test ends.
func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		testutil.Unavailable(t, "network tests need root to create network namespaces and TAPs")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testutil.Unavailable(t, "network tests need iproute2's ip: %v", err)
	}
	netnsSeq.Lock()
	netnsSeq.n++
	name := fmt.Sprintf("vireo-e2e-%d-%d", os.Getpid(), netnsSeq.n)
	netnsSeq.Unlock()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		testutil.Unavailable(t, "ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return &netns{t: t, name: name}
}

// ip runs `ip -n NS args...` and fails the test on error.
func (ns *netns) ip(args ...string) string {
	ns.t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", ns.name}, args...)...).CombinedOutput()
	if err != nil {
		ns.t.Fatalf("ip -n %s %s: %v: %s", ns.name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// exec runs a host program inside the namespace.
func (ns *netns) exec(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...).CombinedOutput()
	return string(out), err
}

// hasLink reports whether the namespace has the interface.
func (ns *netns) hasLink(name string) bool {
	return exec.Command("ip", "-n", ns.name, "link", "show", name).Run() == nil
}

// do runs fn on this goroutine's OS thread moved into the namespace:
// sockets fn creates and processes it starts live there. The thread
// returns to its namespace afterwards (or dies with the goroutine if it
// cannot).
func (ns *netns) do(fn func()) {
	ns.t.Helper()
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		ns.t.Fatalf("opening this thread's namespace: %v", err)
	}
	defer unix.Close(orig)
	target, err := unix.Open("/run/netns/"+ns.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		ns.t.Fatalf("opening namespace %s: %v", ns.name, err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		ns.t.Fatalf("entering namespace %s: %v", ns.name, err)
	}
	defer func() {
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	fn()
}

// startNetGuest boots the network test guest under vireo inside ns.
func startNetGuest(t *testing.T, ns *netns, args ...string) *testutil.Guest {
	t.Helper()
	testutil.VireoBinary(t) // built outside the namespace
	all := append([]string{"run", "--kernel", requireGuest(t, "vmlinux"), "--initrd", netInitrd(t),
		"--memory", "256M", "--no-reboot", "--log-level", "debug"}, args...)
	var g *testutil.Guest
	ns.do(func() { g = testutil.StartGuest(t, all...) })
	return g
}

// waitLink waits for vireo to create (or open) the TAP.
func waitLink(t *testing.T, ns *netns, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ns.hasLink(name) {
		if time.Now().After(deadline) {
			t.Fatalf("TAP %s did not appear in %s", name, ns.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// guestRun runs a command in the guest, once more if the guest's shell
// reports the known pipe segfault.
func guestRun(g *testutil.Guest, cmd string, timeout time.Duration) string {
	out := g.Run(cmd, timeout)
	if strings.Contains(out, "Segmentation fault") {
		out = g.Run(cmd, timeout)
	}
	return out
}

var vnetperfResult = regexp.MustCompile(`vnetperf: (sent|received) (\d+) bytes in ([0-9.]+) s \(([0-9.]+) MB/s\) fnv=([0-9a-f]{16})( ok| SHORT)?\r?\n`)

// checkResult checks a vnetperf result line against n bytes of seed.
func checkResult(t *testing.T, what string, m []string, n int64, seed uint64) {
	t.Helper()
	want := fmt.Sprintf("%016x", netguest.Expected(n, seed))
	if m[2] != strconv.FormatInt(n, 10) || m[5] != want {
		t.Errorf("%s: vnetperf reports %s bytes, hash %s; want %d bytes, hash %s", what, m[2], m[5], n, want)
	}
	t.Logf("%s: %s bytes in %s s (%s MB/s), hash %s", what, m[2], m[3], m[4], m[5])
}

// receiveStream accepts one connection on l and checks that it carries
// exactly n bytes of the stream seed; it returns the hash of what came.
func receiveStream(l net.Listener, n int64, seed uint64, timeout time.Duration) (uint64, error) {
	if tl, ok := l.(*net.TCPListener); ok {
		tl.SetDeadline(time.Now().Add(timeout))
	}
	c, err := l.Accept()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	want, h := netguest.NewStream(seed), netguest.NewHash()
	buf, exp := make([]byte, 256<<10), make([]byte, 256<<10)
	var got int64
	for {
		k, err := c.Read(buf)
		if k > 0 {
			want.Read(exp[:k])
			if !bytes.Equal(buf[:k], exp[:k]) {
				return 0, fmt.Errorf("stream differs within bytes %d-%d", got, got+int64(k))
			}
			h.Write(buf[:k])
			got += int64(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("after %d bytes: %w", got, err)
		}
	}
	if got != n {
		return 0, fmt.Errorf("received %d bytes, want %d", got, n)
	}
	return h.Sum64(), nil
}

// dialFrom connects to addr from inside ns, retrying for up to 30 s
// while the guest is not listening yet.
func dialFrom(ns *netns, addr string) (net.Conn, error) {
	var c net.Conn
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; {
		ns.do(func() { c, err = net.DialTimeout("tcp", addr, 10*time.Second) })
		if err == nil || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sendStream connects to addr from inside ns and sends n bytes of the
// stream seed.
func sendStream(ns *netns, addr string, n int64, seed uint64, timeout time.Duration) error {
	c, err := dialFrom(ns, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	_, err = io.CopyN(c, netguest.NewStream(seed), n)
	return err
}

var statsLine = regexp.MustCompile(`virtio-net queue statistics.* pair=(\d+) rx_packets=(\d+) rx_bytes=\d+ rx_dropped=(\d+) tx_packets=(\d+) tx_bytes=\d+ tx_dropped=(\d+)`)

// queueStats parses the per-pair counters vireo logs when the device
// stops; the last report of each pair wins.
func queueStats(stderr string) map[int][4]uint64 {
	out := map[int][4]uint64{}
	for _, m := range statsLine.FindAllStringSubmatch(stderr, -1) {
		pair, _ := strconv.Atoi(m[1])
		var v [4]uint64
		for i := range v {
			v[i], _ = strconv.ParseUint(m[i+2], 10, 64)
		}
		out[pair] = v // rx packets, rx dropped, tx packets, tx dropped
	}
	return out
}

// TestVirtioNet boots a guest on a TAP that vireo creates: MAC and MTU as
// configured, ping both ways, TCP both ways with busybox nc, a bulk
// transfer each way checked byte for byte and by hash, and the TAP gone
// once vireo exits.
func TestVirtioNet(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	const tap, mac = "vnet0", "02:00:00:77:00:02"
	g := startNetGuest(t, ns, "--net", "tap="+tap+",mac="+mac+",mtu=1400")
	waitLink(t, ns, tap)
	ns.ip("addr", "add", netHostIP+"/24", "dev", tap)
	ns.ip("link", "set", tap, "mtu", "1400", "up")
	g.Expect("VIREO-BOOT-OK", netBootTimeout)
	g.Expect("NET-UP", netBootTimeout)
	g.Expect(prompt, netBootTimeout)

	if got := g.Run("cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu /sys/class/net/eth0/operstate", netCmdTimeout); got != mac+"\n1400\nup" {
		t.Errorf("eth0 address, MTU, state = %q", got)
	}
	if got := g.Run("ip link show eth0", netCmdTimeout); !strings.Contains(got, "mtu 1400") {
		t.Errorf("ip link show eth0: %q", got)
	}
	if got := g.Run("ping -c 3 -W 10 "+netHostIP, 2*time.Minute); !strings.Contains(got, " 0% packet loss") {
		t.Errorf("guest ping: %s", got)
	}
	if out, err := ns.exec("busybox", "ping", "-c", "3", "-W", "10", netGuestIP); err != nil || !strings.Contains(out, " 0% packet loss") {
		t.Errorf("host ping: %v: %s", err, out)
	}

	// TCP with busybox nc, guest to host and host to guest.
	var l net.Listener
	var err error
	ns.do(func() { l, err = net.Listen("tcp", netHostIP+":5001") })
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		l.(*net.TCPListener).SetDeadline(time.Now().Add(2 * time.Minute))
		c, err := l.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close() // busybox nc exits when the host closes
		got <- line
	}()
	g.Run("echo hello-from-guest > /tmp/msg", netCmdTimeout)
	guestRun(g, "nc "+netHostIP+" 5001 < /tmp/msg", 2*time.Minute)
	if s := <-got; s != "hello-from-guest\n" {
		t.Errorf("host received %q from guest nc", s)
	}
	l.Close()
	// The marker is computed so that the echo of the typed command does
	// not match it.
	g.Send("nc -l -p 5002 > /tmp/got; echo NC-DONE-$((40+2))\n")
	time.Sleep(2 * time.Second)
	if err := sendBytes(ns, netGuestIP+":5002", []byte("hello-from-host\n")); err != nil {
		t.Errorf("connecting to guest nc: %v", err)
	}
	g.Expect("NC-DONE-42", 2*time.Minute)
	g.Expect(prompt, netCmdTimeout)
	if s := g.Run("cat /tmp/got", netCmdTimeout); s != "hello-from-host" {
		t.Errorf("guest nc received %q", s)
	}

	// Bulk, guest to host.
	n := netBytes(t)
	to := transferTimeout(n)
	ns.do(func() { l, err = net.Listen("tcp", netHostIP+":5003") })
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		sum uint64
		err error
	}
	res := make(chan result, 1)
	go func() {
		s, err := receiveStream(l, n, 1, to)
		res <- result{s, err}
	}()
	g.Send(fmt.Sprintf("vnetperf send %s 5003 %d 1\n", netHostIP, n))
	m := g.Expect(vnetperfResult.String(), to)
	checkResult(t, "guest to host", m, n, 1)
	if r := <-res; r.err != nil || r.sum != netguest.Expected(n, 1) {
		t.Errorf("host side of guest to host: hash %x, %v", r.sum, r.err)
	}
	l.Close()
	g.Expect(prompt, netCmdTimeout)

	// Bulk, host to guest.
	g.Send(fmt.Sprintf("vnetperf recv 5004 %d 2\n", n))
	g.Expect("listening on 5004", netCmdTimeout)
	send := make(chan error, 1)
	go func() { send <- sendStream(ns, netGuestIP+":5004", n, 2, to) }()
	m = g.Expect(vnetperfResult.String(), to)
	if m[6] != " ok" {
		t.Errorf("host to guest: vnetperf did not confirm the stream: %q", m[0])
	}
	checkResult(t, "host to guest", m, n, 2)
	if err := <-send; err != nil {
		t.Errorf("host side of host to guest: %v", err)
	}
	g.Expect(prompt, netCmdTimeout)

	g.Send("reboot -f\n")
	if code := g.Wait(netCmdTimeout); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if ns.hasLink(tap) {
		t.Errorf("the TAP vireo created is still there after it exited")
	}
	st := queueStats(g.Stderr())
	if s, ok := st[0]; !ok || s[0] == 0 || s[2] == 0 || s[3] != 0 {
		t.Errorf("queue pair 0 counters %v (rx packets, rx dropped, tx packets, tx dropped); want traffic and no transmit drops", s)
	}
}

// sendBytes connects from inside ns and writes b.
func sendBytes(ns *netns, addr string, b []byte) error {
	c, err := dialFrom(ns, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write(b)
	return err
}

// TestVirtioNetMultiqueue boots 2 vCPUs on a persistent multi-queue TAP
// made beforehand with two queue pairs: the guest enables both, a sender
// pinned to each vCPU moves a stream to the host through its own pair,
// both pairs carry traffic in both directions, and the TAP outlives vireo.
func TestVirtioNetMultiqueue(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	const tap = "vmq0"
	ns.ip("tuntap", "add", "dev", tap, "mode", "tap", "multi_queue")
	ns.ip("addr", "add", netHostIP+"/24", "dev", tap)
	ns.ip("link", "set", tap, "up")
	g := startNetGuest(t, ns, "--cpus", "2", "--net", "tap="+tap+",queues=2")
	g.Expect("VIREO-BOOT-OK", netBootTimeout)
	g.Expect("NET-UP", netBootTimeout)
	g.Expect(prompt, netBootTimeout)
	if got := g.Run("ls /sys/class/net/eth0/queues", netCmdTimeout); strings.Join(strings.Fields(got), " ") != "rx-0 rx-1 tx-0 tx-1" {
		t.Errorf("eth0 queues: %q", got)
	}

	n := netBytes(t) / 2
	to := transferTimeout(n)
	for attempt := 0; !mqTransfer(t, g, ns, n, to, attempt); attempt++ {
	}
	g.Expect(prompt, netCmdTimeout)
	g.Send("reboot -f\n")
	if code := g.Wait(netCmdTimeout); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if !ns.hasLink(tap) {
		t.Error("vireo removed the persistent TAP it did not create")
	}
	st := queueStats(g.Stderr())
	for pair := range 2 {
		if s, ok := st[pair]; !ok || s[0] == 0 || s[2] == 0 || s[3] != 0 {
			t.Errorf("queue pair %d counters %v (rx packets, rx dropped, tx packets, tx dropped); want traffic both ways and no transmit drops", pair, s)
		}
	}
}

// mqTransfer moves n bytes to the host over each of two flows at once,
// one sender per vCPU: the driver maps each CPU to its own transmit
// queue, and the TAP answers each flow on the queue it came from. It
// reports false when a sender crashed as it started, the guest fault this
// host shows for programs started while another is busy (see
// testutil.Guest.Run), so that the caller tries again on fresh ports; a
// third crash fails the test.
func mqTransfer(t *testing.T, g *testutil.Guest, ns *netns, n int64, to time.Duration, attempt int) bool {
	t.Helper()
	type result struct {
		sum uint64
		err error
	}
	var results [2]chan result
	var ports [2]int
	for i := range 2 {
		var l net.Listener
		var err error
		ports[i] = 5010 + 2*attempt + i
		ns.do(func() { l, err = net.Listen("tcp", fmt.Sprintf("%s:%d", netHostIP, ports[i])) })
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close() // ends a receiver whose sender never came
		results[i] = make(chan result, 1)
		go func() {
			s, err := receiveStream(l, n, uint64(10+i), to)
			results[i] <- result{s, err}
		}()
	}
	done := fmt.Sprintf("MQ-DONE-%d", 100+attempt)
	g.Send(fmt.Sprintf("taskset 1 vnetperf send %s %d %d 10 > /tmp/s0 2>&1 & taskset 2 vnetperf send %s %d %d 11 > /tmp/s1 2>&1; wait; cat /tmp/s0 /tmp/s1; echo MQ-DONE-$((%d+%d))\n",
		netHostIP, ports[0], n, netHostIP, ports[1], n, 100, attempt))
	out := g.Expect(`(?s)^(.*?)`+done+`\r?\n`, 2*to)[1]
	ms := vnetperfResult.FindAllStringSubmatch(out, -1)
	if len(ms) != 2 {
		if strings.Contains(out, "Segmentation fault") && attempt < 2 {
			t.Logf("a sender crashed at its start (attempt %d); again:\n%s", attempt+1, out)
			g.Expect(prompt, netCmdTimeout)
			return false
		}
		t.Fatalf("%d vnetperf results, want 2:\n%s", len(ms), out)
	}
	for i, m := range ms {
		checkResult(t, fmt.Sprintf("flow %d", i), m, n, uint64(10+i))
	}
	for i := range 2 {
		if r := <-results[i]; r.err != nil || r.sum != netguest.Expected(n, uint64(10+i)) {
			t.Errorf("host side of flow %d: hash %x, %v", i, r.sum, r.err)
		}
	}
	return true
}
