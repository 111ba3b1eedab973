package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/vsock/vsocktest"
	"github.com/vireo-vmm/vireo/internal/initramfs"
	"github.com/vireo-vmm/vireo/internal/testutil"
)

// workctl is the guest's side of TestSnapshotWork, a script in its
// initramfs:
//
//	workctl mount   mount the disk (-o sync: every append reaches the disk)
//	workctl start   start the vsock echo server and the three work loops
//	workctl stop    stop the loops and unmount the disk
//
// On the development host a program exec'd in the guest may die of a
// segmentation fault at its start (a TLS read finds a null pointer): about
// half of them do while another guest process keeps the vCPU busy, under
// QEMU as under Vireo. So the loops are forked shell functions that use
// builtins only and pace themselves with `read -t` on a FIFO nobody
// writes, and every command may run more than once: start starts what is
// not running, which also restarts what died at its start (a new disk
// loop begins the file anew), and the rest are idempotent. The counter
// (read by readCounter) is written in place, never truncated: its digits
// only grow, so a reader always sees a whole number.
const workctl = `#!/bin/sh
alive() { p=; read p 2>/dev/null < /tmp/$1.pid; kill -0 ${p:-none} 2>/dev/null; }
mounted() { m=; while read d p r; do [ "$p" = /mnt/d ] && m=1; done < /proc/mounts; [ -n "$m" ]; }
tick() { read -t 0.2 x <&7; }
counter() { i=0; while :; do i=$((i+1)); echo $i 1<>/tmp/c; tick; done; }
disk() { : > /mnt/d/log; i=0; while :; do i=$((i+1)); echo $i >> /mnt/d/log; tick; done; }
numbers() { i=0; while :; do i=$((i+1)); echo $i; tick; done; }
case $1 in
mount)
	mkdir -p /mnt/d
	mounted || mount -o sync -t ext4 /dev/vda /mnt/d
	mounted && echo mounted-$((40+2));;
start)
	[ -p /tmp/tick ] || { rm -f /tmp/tick; mkfifo /tmp/tick; }
	[ -p /tmp/tick ] || exit 1
	exec 7<>/tmp/tick
	alive echo || { vsockecho serve 52 & echo $! > /tmp/echo.pid; }
	alive counter || { counter >/dev/null 2>&1 & echo $! > /tmp/counter.pid; }
	alive disk || { disk >/dev/null 2>&1 & echo $! > /tmp/disk.pid; }
	alive net || { nc ` + netHostIP + ` 5005 -e workctl net 2>/dev/null & echo $! > /tmp/net.pid; };;
net)
	exec 7<>/tmp/tick; numbers;;
stop)
	for f in net disk counter; do alive $f && kill $p; done
	for i in 1 2 3 4 5; do umount /mnt/d 2>/dev/null && break; sleep 1; done
	mounted || echo unmounted-$((40+2));;
esac
`

// workKernelLog prints the guest kernel's messages about disk or device
// errors, then scanned-42.
const workKernelLog = `dmesg > /tmp/dm && { while read l; do case "$l" in ` +
	`*"EXT4-fs error"*|*"EXT4-fs warning"*|*"I/O error"*|*virtio*rror*|*virtio*broken*) echo "kernel: $l";; esac; ` +
	`done < /tmp/dm; echo scanned-$((40+2)); }`

// workLines prints how many lines the disk file has, with builtins only.
const workLines = `n=0; while read x; do n=$((n+1)); done < /mnt/d/log; echo $n`

// workPort is the vsock port of workctl's echo server.
const workPort = 52

// lineSink collects the numbered lines that guest connections stream to
// a host listener; it keeps the latest connection's.
type lineSink struct {
	mu     sync.Mutex
	conns  int
	nums   []int
	bad    []string // lines that are not numbers
	ended  error    // io.EOF for an orderly end, or the read error
	change chan struct{}
}

// sinkState is one look at a lineSink.
type sinkState struct {
	conns, lines, last int
	ended              error // nil while the latest connection is open
}

// serveLines accepts connections on l one after the other (until l is
// closed) and records their lines.
func serveLines(l net.Listener) *lineSink {
	s := &lineSink{change: make(chan struct{}, 1)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.nums, s.bad, s.ended = nil, nil, nil
			s.mu.Unlock()
			s.read(c)
			c.Close()
		}
	}()
	return s
}

func (s *lineSink) read(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		s.mu.Lock()
		if err != nil {
			s.ended = err
		} else if n, err := strconv.Atoi(strings.TrimSpace(line)); err == nil {
			s.nums = append(s.nums, n)
		} else {
			s.bad = append(s.bad, line)
		}
		s.mu.Unlock()
		select {
		case s.change <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

func (s *lineSink) state() sinkState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := sinkState{conns: s.conns, lines: len(s.nums), ended: s.ended}
	if len(s.nums) > 0 {
		st.last = s.nums[len(s.nums)-1]
	}
	return st
}

// waitFor waits until cond holds, or fails the test.
func (s *lineSink) waitFor(t *testing.T, what string, timeout time.Duration, cond func(sinkState) bool) sinkState {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if st := s.state(); cond(st) {
			return st
		}
		select {
		case <-s.change:
		case <-deadline:
			t.Fatalf("host TCP listener: %s: not within %v (%+v)", what, timeout, s.state())
		}
	}
}

// check reports a gap, a duplicate or a stray line in the latest
// connection's stream.
func (s *lineSink) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bad) > 0 {
		return fmt.Errorf("%d lines are not numbers, the first %q", len(s.bad), s.bad[0])
	}
	return consecutive(s.nums)
}

// consecutive checks that nums is 1, 2, 3, ...
func consecutive(nums []int) error {
	for i, n := range nums {
		if n != i+1 {
			return fmt.Errorf("line %d holds %d (after %v)", i+1, n, nums[max(0, i-3):i])
		}
	}
	return nil
}

// workInitrd builds the busybox guest with vsockecho, workctl and an
// init script that gives eth0 its address.
func workInitrd(t *testing.T, dir string) string {
	t.Helper()
	echo, err := vsocktest.Build(dir)
	if errors.Is(err, vsocktest.ErrNoCompiler) {
		testutil.Unavailable(t, "%v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nip addr add " + netGuestIP + "/24 dev eth0 && ip link set eth0 up && echo NET-UP\n"
	path := filepath.Join(dir, "initrd.cpio")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	err = initramfs.Build(f, initramfs.Options{Extra: map[string][]byte{
		vsocktest.GuestPath:        echo,
		"/bin/workctl":             []byte(workctl),
		"/etc/vireo-init.d/10-net": []byte(script),
	}})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// runAgain runs an idempotent guest command until its output reports no
// segmentation fault (see workctl), at most five times.
func runAgain(g *testutil.Guest, cmd string) string {
	var out string
	for range 5 {
		if out = g.Run(cmd, netCmdTimeout); !strings.Contains(out, "Segmentation fault") {
			break
		}
	}
	return out
}

// guestInt runs a command that prints a number as its last line.
func guestInt(g *testutil.Guest, cmd string) (int, error) {
	out := runAgain(g, cmd)
	n, err := strconv.Atoi(strings.TrimSpace(out[strings.LastIndex(out, "\n")+1:]))
	if err != nil {
		return 0, fmt.Errorf("%q: %q", cmd, out)
	}
	return n, nil
}

// TestSnapshotWork snapshots a guest in the middle of its work and
// restores it: a counter in memory, a loop appending synced lines to a
// file on an ext4 disk, a TCP connection over which it streams numbered
// lines to a host listener, and a vsock stream from the host to its echo
// server. The restored guest counts on, its disk loop goes on, its TCP
// stream goes on, its vsock stream is reset; at the end the host finds
// the file system clean and the file's lines consecutive.
//
// The disk is not part of a snapshot: the file stays the guest's disk.
// So the source is paused (QMP stop) before the snapshot and killed
// without running again, as Firecracker requires a paused VM for its
// snapshots; a source that ran on after the snapshot would write the
// disk behind the back of the restored guest's page cache.
//
// The TAP is a persistent one made by the test: it outlives the killed
// source, with its address and the host's end of the TCP connection, and
// the restored VM attaches to it by name. (A TAP that vireo creates
// vanishes with the process, and the host's address and route with it.)
func TestSnapshotWork(t *testing.T) {
	t.Parallel()
	kernel := requireGuest(t, "vmlinux")
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			testutil.Unavailable(t, "%s is not installed (Debian e2fsprogs)", tool)
		}
	}
	ns := newNetns(t)
	testutil.VireoBinary(t) // built outside the namespace
	// A short directory: Unix socket paths are limited.
	dir, err := os.MkdirTemp("", "vsw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	initrd := workInitrd(t, dir)
	disk := filepath.Join(dir, "disk.raw")
	ext4Image(t, disk, 32<<20, nil)
	qmp, uds, snap := filepath.Join(dir, "qmp.sock"), filepath.Join(dir, "v.sock"), filepath.Join(dir, "snap")

	const tap = "vsw0"
	ns.ip("tuntap", "add", "dev", tap, "mode", "tap")
	ns.ip("addr", "add", netHostIP+"/24", "dev", tap)
	ns.ip("link", "set", tap, "up")
	var l net.Listener
	ns.do(func() { l, err = net.Listen("tcp", netHostIP+":5005") })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sink := serveLines(l)

	start := func(args ...string) *testutil.Guest {
		var g *testutil.Guest
		ns.do(func() { g = testutil.StartGuest(t, args...) })
		return g
	}
	began := time.Now()
	g := start("run", "--kernel", kernel, "--initrd", initrd, "--memory", "128M", "--no-reboot",
		"--qmp", "unix:"+qmp, "--disk", "path="+disk, "--net", "tap="+tap, "--vsock", "cid=3,uds="+uds)
	g.Expect("VIREO-BOOT-OK", netBootTimeout)
	g.Expect("NET-UP", netBootTimeout)
	g.Expect(prompt, netBootTimeout)
	t.Logf("booted in %v", time.Since(began).Round(time.Millisecond))
	if out := runAgain(g, "workctl mount"); !strings.HasSuffix(out, "mounted-42") {
		t.Fatalf("mounting the disk: %q", out)
	}

	// Start the work and the echo server, and wait until every part of
	// it makes progress, starting again whatever died at its start.
	var held net.Conn
	var heldR *bufio.Reader
	before, diskBefore := 0, 0
	for deadline := time.Now().Add(netCmdTimeout); ; {
		runAgain(g, "workctl start")
		time.Sleep(3 * time.Second)
		if held == nil {
			if c, r, _, err := vsockConnect(uds, workPort); err == nil {
				held, heldR = c, r
				defer held.Close()
			}
		}
		var err error
		if before, err = guestInt(g, "v=0; read v < /tmp/c; echo $v"); err != nil {
			t.Logf("reading the counter: %v", err)
		}
		if diskBefore, err = guestInt(g, workLines); err != nil {
			t.Logf("counting the disk file's lines: %v", err)
		}
		st := sink.state()
		if held != nil && before >= 3 && diskBefore >= 5 && st.lines >= 5 && st.ended == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest's work does not get going: vsock %v, counter %d, disk file %d lines, TCP %+v", held != nil, before, diskBefore, sink.state())
		}
	}
	if err := echoSome(held, heldR, stream(1, 4096)); err != nil {
		t.Fatalf("vsock echo before the snapshot: %v", err)
	}
	t.Logf("%v: work under way", time.Since(began).Round(time.Second))

	// Pause, snapshot, kill: the source never runs again.
	mon := dialQMP(t, g, qmp)
	if r := run(t, mon, `{"execute":"stop"}`); r["error"] != nil {
		t.Fatalf("stop: %v", r)
	}
	code, out, stderr := testutil.RunVireo(t, 2*time.Minute, "snapshot", "create", "--qmp", "unix:"+qmp, snap)
	if code != 0 {
		t.Fatalf("snapshot create: exit %d: %s", code, stderr)
	}
	t.Logf("%s", strings.TrimSpace(out))
	// The snapshot closes the source's vsock streams.
	held.SetReadDeadline(time.Now().Add(netCmdTimeout))
	if n, err := heldR.Read(make([]byte, 1)); err == nil {
		t.Errorf("the vsock stream open during the snapshot still reads (%d bytes)", n)
	}
	// Lines in flight when the guest stopped have arrived by now.
	time.Sleep(time.Second)
	atSnap := sink.state()
	if atSnap.ended != nil {
		t.Fatalf("the TCP stream ended before the snapshot: %+v", atSnap)
	}
	g.Process().Signal(syscall.SIGKILL)
	g.Wait(netCmdTimeout)
	if !ns.hasLink(tap) {
		t.Fatal("the persistent TAP is gone after the source was killed")
	}

	// The snapshot names the same TAP, disk file and vsock socket path.
	restoreStart := time.Now()
	r := start("run", "--restore", snap, "--no-reboot")
	// The guest learns of the vsock reset from the restored device.
	r.Expect("vsockecho: connection error", netCmdTimeout)
	first := readCounter(t, r)
	t.Logf("restored guest answered after %v", time.Since(restoreStart).Round(time.Millisecond))
	if first < before {
		t.Errorf("restored counter %d, the source had reached %d before the snapshot", first, before)
	}
	second := first
	for deadline := time.Now().Add(time.Minute); second <= first && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		second = readCounter(t, r)
	}
	if second <= first {
		t.Errorf("the restored counter does not advance (%d)", first)
	}

	// The disk loop goes on from where the snapshot left it.
	diskFirst, err := guestInt(r, workLines)
	if err != nil {
		t.Fatal(err)
	}
	if diskFirst < diskBefore {
		t.Errorf("restored guest's file has %d lines, %d before the snapshot", diskFirst, diskBefore)
	}
	diskSecond := diskFirst
	for deadline := time.Now().Add(time.Minute); diskSecond <= diskFirst && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		if diskSecond, err = guestInt(r, workLines); err != nil {
			t.Fatal(err)
		}
	}
	if diskSecond <= diskFirst {
		t.Errorf("the restored disk loop does not advance (%d lines)", diskFirst)
	}

	// The TCP connection survives: the guest's TCP state in the snapshot
	// matches what the host received (the source stopped before the
	// snapshot), the host kept its end on the persistent TAP, and the
	// restored guest retransmits whatever was unacknowledged. The host
	// reads on, on the same connection, with no gap or duplicate.
	after := sink.waitFor(t, "lines after the restore", netCmdTimeout, func(st sinkState) bool {
		return st.lines >= atSnap.lines+10 || st.ended != nil || st.conns != atSnap.conns
	})
	if after.ended != nil || after.conns != atSnap.conns {
		t.Errorf("the TCP stream did not go on after the restore: %+v, at the snapshot %+v", after, atSnap)
	}
	if err := sink.check(); err != nil {
		t.Errorf("TCP stream across the restore: %v", err)
	}

	// New vsock streams work on the restored VM.
	c, cr, _, err := vsockConnect(uds, workPort)
	if err != nil {
		t.Fatalf("vsock connection to the restored VM: %v", err)
	}
	if err := echoCheck(c, cr, stream(2, 16<<10)); err != nil {
		t.Errorf("vsock echo after the restore: %v", err)
	}
	c.Close()
	if out := runAgain(r, workKernelLog); !strings.HasSuffix(out, "scanned-42") || strings.Contains(out, "kernel: ") {
		t.Errorf("the guest's kernel log reports disk or device errors:\n%s", out)
	}
	t.Logf("%v: restored guest checked", time.Since(began).Round(time.Second))

	// Stop the loops (nc first, which ends the host's stream), unmount
	// and power off; then the host checks the file system and the file.
	if out := runAgain(r, "workctl stop"); !strings.HasSuffix(out, "unmounted-42") {
		t.Errorf("stopping the loops and unmounting: %q", out)
	}
	end := sink.waitFor(t, "the end of the stream", netCmdTimeout, func(st sinkState) bool { return st.ended != nil })
	if end.ended != io.EOF || end.conns != atSnap.conns {
		t.Errorf("the TCP stream ended with %+v, want an orderly close of the same connection once nc is killed", end)
	}
	if err := sink.check(); err != nil {
		t.Errorf("TCP stream: %v", err)
	}
	r.Send("reboot -f\n")
	if code := r.Wait(netCmdTimeout); code != 0 {
		t.Errorf("restored VM exit code %d, want 0", code)
	}
	if out, err := exec.Command("e2fsck", "-fn", disk).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn of the disk: %v\n%s", err, out)
	}
	data, err := exec.Command("debugfs", "-R", "cat /log", disk).Output()
	if err != nil {
		t.Fatalf("debugfs cat /log: %v", err)
	}
	var nums []int
	for _, f := range strings.Fields(string(data)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("the disk file holds %q", f)
		}
		nums = append(nums, n)
	}
	if err := consecutive(nums); err != nil {
		t.Errorf("the disk file: %v", err)
	}
	if len(nums) < diskSecond {
		t.Errorf("the disk file has %d lines, the restored guest had counted %d", len(nums), diskSecond)
	}
	t.Logf("counter %d before the snapshot, %d and %d after; disk file %d lines before, %d after the restore, %d at the end; "+
		"TCP %d lines at the snapshot, %d at the end on connection %d; %v in all",
		before, first, second, diskBefore, diskFirst, len(nums), atSnap.lines, end.lines, end.conns, time.Since(began).Round(time.Second))
}
