package e2e

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/testutil"
)

// Live migration end to end: between two network namespaces while the
// guest writes memory and disk, cancelled half-way, and through a proxy
// that damages the stream.

// migrateLoop counts in a tmpfs file and writes each value to the disk
// (sector 8192) as well, so both memory and disk change throughout.
const migrateLoop = `(i=0; while true; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/c; ` +
	`dd if=/tmp/c of=/dev/vda bs=512 seek=8192 count=1 conv=fsync 2>/dev/null; done) >/dev/null 2>&1 &`

// TestMigrateBetweenNetns migrates a guest from a vireo in one network
// namespace to a vireo in another, over a veth pair, with `vireo
// migrate`, while the guest counts in memory and writes its disk. The
// target continues the count, has the file made before the migration,
// and the disk holds what both wrote.
func TestMigrateBetweenNetns(t *testing.T) {
	t.Parallel()
	kernel, initrd := requireGuest(t, "vmlinux"), testutil.DefaultInitrd(t)
	nsA, nsB, addrB := netnsPair(t)
	dir := t.TempDir()
	srcSock, tgtSock := filepath.Join(dir, "src.sock"), filepath.Join(dir, "tgt.sock")
	disk := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(disk, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	src := startVireo(t, nsA, "run", "--kernel", kernel, "--initrd", initrd, "--no-reboot",
		"--memory", "128M", "--qmp", "unix:"+srcSock, "--disk", "path="+disk)
	src.Expect("VIREO-BOOT-OK", bootTimeout)
	src.Expect(prompt, cmdTimeout)
	sum := field(t, src.Run("dd if=/bin/busybox of=/tmp/blob bs=4096 count=256 2>/dev/null; md5sum /tmp/blob", cmdTimeout), 0)
	if got := src.Run("dd if=/tmp/blob of=/dev/vda bs=4096 conv=fsync 2>/dev/null; echo written", cmdTimeout); got != "written" {
		t.Fatalf("writing the disk: %q", got)
	}
	src.Send(migrateLoop + "\n")
	before := 0
	for before < 2 {
		time.Sleep(time.Second)
		before = counter(t, src)
	}

	// The target listens in the other namespace; the machine comes
	// from the source (no kernel, no disk flags here).
	tgt := startVireo(t, nsB, "run", "--incoming", "tcp:"+addrB+":4444", "--no-reboot", "--qmp", "unix:"+tgtSock)
	tq := dialMigQMP(t, tgtSock, tgt.done)
	if st := tq.do("query-status", nil)["return"].(map[string]any)["status"]; st != "inmigrate" {
		t.Fatalf("target status %v, want inmigrate", st)
	}

	start := time.Now()
	code, out, stderr := testutil.RunVireo(t, 5*time.Minute, "migrate", "--qmp", "unix:"+srcSock, "--verify", "tcp:"+addrB+":4444")
	if code != 0 {
		t.Fatalf("vireo migrate: exit %d: %s%s", code, out, stderr)
	}
	t.Logf("%s (%v)", strings.TrimSpace(out), time.Since(start).Round(time.Millisecond))
	if !regexp.MustCompile(`(?m)^migrated to tcp:.* downtime \d+ ms`).MatchString(out) {
		t.Errorf("vireo migrate output: %q", out)
	}
	if code := src.Wait(cmdTimeout); code != 0 {
		t.Errorf("source exit %d after the migration, want 0 (quit): %s", code, src.Stderr())
	}
	tq.waitEvent(t, "MIGRATION", `"completed"`, cmdTimeout)
	tq.waitEvent(t, "RESUME", "", cmdTimeout)
	if st := tq.do("query-status", nil)["return"].(map[string]any)["status"]; st != "running" {
		t.Errorf("target status %v after the migration", st)
	}

	// The target runs the same guest: its count goes on, its files and
	// disk are intact, and it keeps writing the disk.
	first := counter(t, tgt)
	if first < before {
		t.Errorf("target counter %d, the source had reached %d", first, before)
	}
	if got := field(t, tgt.Run("md5sum /tmp/blob", cmdTimeout), 0); got != sum {
		t.Errorf("/tmp/blob on the target: md5 %s, want %s", got, sum)
	}
	second := first
	for deadline := time.Now().Add(2 * time.Minute); second <= first && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		second = counter(t, tgt)
	}
	if second <= first {
		t.Fatalf("the counter does not advance on the target (%d)", first)
	}
	tgt.Run("kill $!; sleep 1; sync", cmdTimeout)
	last := counter(t, tgt)
	got := field(t, tgt.Run("echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda of=/tmp/back bs=4096 count=256 2>/dev/null; md5sum /tmp/back", cmdTimeout), 0)
	if got != sum {
		t.Errorf("disk read back on the target: md5 %s, want %s", got, sum)
	}
	t.Logf("counter: %d on the source before, %d, %d then %d on the target", before, first, second, last)
	tgt.Send("reboot -f\n")
	if code := tgt.Wait(cmdTimeout); code != 0 {
		t.Errorf("target exit %d: %s", code, tgt.Stderr())
	}

	// On the host: the blob the source wrote and the target's last count.
	b, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	if h := md5.Sum(b[:1<<20]); hex.EncodeToString(h[:]) != sum {
		t.Errorf("disk image blob md5 %x, want %s", h, sum)
	}
	onDisk, _ := strconv.Atoi(strings.TrimSpace(string(bytes.TrimRight(b[8192*512:8192*512+16], "\x00"))))
	if onDisk != last && onDisk != last-1 || onDisk <= first {
		t.Errorf("disk sector 8192 holds %d; the target counted from %d to %d", onDisk, first, last)
	}
}

// TestMigrateCancel throttles a migration, cancels it half-way, and
// checks that the source runs on, answers, and migrates fine afterwards.
func TestMigrateCancel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "qmp.sock")
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--no-reboot", "--qmp", "unix:"+sock)...)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	q := dialMigQMP(t, sock, g.Done())

	tgt1 := filepath.Join(dir, "t1.sock")
	target := testutil.StartGuest(t, "run", "--incoming", "unix:"+tgt1, "--no-reboot")
	waitSocket(t, tgt1, target.Done())
	if r := q.do("migrate-set-parameters", map[string]any{"max-bandwidth": 512 << 10}); r["error"] != nil {
		t.Fatalf("migrate-set-parameters: %v", r)
	}
	if r := q.do("query-migrate-parameters", nil)["return"].(map[string]any); r["max-bandwidth"] != json.Number("524288") {
		t.Errorf("query-migrate-parameters: %v", r)
	}
	if r := q.do("migrate", map[string]any{"uri": "unix:" + tgt1}); r["error"] != nil {
		t.Fatalf("migrate: %v", r)
	}
	q.waitEvent(t, "MIGRATION", `"active"`, cmdTimeout)
	for {
		info := q.do("query-migrate", nil)["return"].(map[string]any)
		ram, _ := info["ram"].(map[string]any)
		if info["status"] != "active" {
			t.Fatalf("query-migrate before cancelling: %v", info)
		}
		if n, _ := ram["transferred"].(json.Number).Int64(); n > 1<<20 {
			t.Logf("cancelling with %d bytes sent: %v", n, info)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := q.do("migrate", map[string]any{"uri": "unix:" + tgt1}); r["error"] == nil {
		t.Errorf("a second migrate while one runs succeeded: %v", r)
	}
	if r := q.do("migrate_cancel", nil); r["error"] != nil {
		t.Fatalf("migrate_cancel: %v", r)
	}
	q.waitEvent(t, "MIGRATION", `"cancelled"`, cmdTimeout)
	if st := q.do("query-migrate", nil)["return"].(map[string]any)["status"]; st != "cancelled" {
		t.Errorf("query-migrate after cancel: %v", st)
	}
	if st := q.do("query-status", nil)["return"].(map[string]any)["status"]; st != "running" {
		t.Errorf("source status %v after cancel", st)
	}
	if got := g.Run("echo alive-$((40+2))", cmdTimeout); got != "alive-42" {
		t.Errorf("source after cancel: %q", got)
	}
	code := target.Wait(cmdTimeout)
	checkOneLineError(t, code, target.Stderr(), "stream ended early")
	t.Logf("target: %s", strings.TrimSpace(target.Stderr()))

	// Unthrottled now, the same source migrates. It was paused first,
	// so the target stays paused until told to continue, as QEMU's does.
	tgt2, tq2sock := filepath.Join(dir, "t2.sock"), filepath.Join(dir, "t2qmp.sock")
	target2 := testutil.StartGuest(t, "run", "--incoming", "unix:"+tgt2, "--no-reboot", "--qmp", "unix:"+tq2sock)
	waitSocket(t, tgt2, target2.Done())
	tq := dialMigQMP(t, tq2sock, target2.Done())
	q.do("stop", nil)
	code, out, stderr := testutil.RunVireo(t, 5*time.Minute, "migrate", "--qmp", "unix:"+sock, "--max-bandwidth", "0", "unix:"+tgt2)
	if code != 0 {
		t.Fatalf("vireo migrate after the cancel: exit %d: %s%s", code, out, stderr)
	}
	g.Wait(cmdTimeout)
	tq.waitEvent(t, "MIGRATION", `"completed"`, cmdTimeout)
	tq.waitEvent(t, "STOP", "", cmdTimeout) // built, and left paused
	if st := tq.do("query-status", nil)["return"].(map[string]any)["status"]; st != "paused" {
		t.Errorf("target of a paused VM: status %v, want paused", st)
	}
	tq.do("cont", nil)
	if got := target2.Run("echo moved-$((40+2))", cmdTimeout); got != "moved-42" {
		t.Errorf("target: %q", got)
	}
}

// TestMigrateStreamFaults sends the migration through a proxy that cuts
// the connection, flips a byte, or changes the version: each target
// exits non-zero with one line, the source fails the migration and runs
// on. An undamaged pass then completes.
func TestMigrateStreamFaults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "qmp.sock")
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--no-reboot", "--qmp", "unix:"+sock)...)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	g.Send(counterScript + "\n")
	q := dialMigQMP(t, sock, g.Done())

	faults := []struct {
		name   string
		damage func(off int64, b []byte) ([]byte, bool) // bytes to forward, and whether to go on
		want   string
	}{
		{"cut after 2 MiB", func(off int64, b []byte) ([]byte, bool) {
			if off+int64(len(b)) > 2<<20 {
				return b[:max(0, 2<<20-off)], false
			}
			return b, true
		}, "stream ended early"},
		{"flipped byte", func(off int64, b []byte) ([]byte, bool) {
			if i := 1<<20 + 7 - off; i >= 0 && i < int64(len(b)) {
				b[i] ^= 0x20
			}
			return b, true
		}, "checksum mismatch"},
		{"other version", func(off int64, b []byte) ([]byte, bool) {
			if off == 0 && len(b) > 8 {
				b[8] = 2
			}
			return b, true
		}, "unsupported stream version"},
		{"clean", func(off int64, b []byte) ([]byte, bool) { return b, true }, ""},
	}
	for i, f := range faults {
		tsock := filepath.Join(dir, fmt.Sprintf("t%d.sock", i))
		target := testutil.StartGuest(t, "run", "--incoming", "unix:"+tsock, "--no-reboot")
		waitSocket(t, tsock, target.Done())
		proxy := startProxy(t, tsock, f.damage)
		mark := q.mark()
		if r := q.do("migrate", map[string]any{"uri": "tcp:" + proxy}); r["error"] != nil {
			t.Fatalf("%s: migrate: %v", f.name, r)
		}
		if f.want == "" {
			q.waitEventFrom(t, "MIGRATION", `"completed"`, mark, 2*time.Minute)
			if got := target.Run("echo migrated-$((40+2))", cmdTimeout); got != "migrated-42" {
				t.Errorf("clean: target answered %q", got)
			}
			if st := q.do("query-status", nil)["return"].(map[string]any)["status"]; st != "postmigrate" {
				t.Errorf("source status %v after the migration, want postmigrate", st)
			}
			break
		}
		ev := q.waitEventFrom(t, "MIGRATION", `"failed"`, mark, 2*time.Minute)
		code := target.Wait(cmdTimeout)
		checkOneLineError(t, code, target.Stderr(), f.want)
		info := q.do("query-migrate", nil)["return"].(map[string]any)
		t.Logf("%s: target: %s; source: %v (%s)", f.name, strings.TrimSpace(target.Stderr()), info["error-desc"], ev)
		if st := q.do("query-status", nil)["return"].(map[string]any)["status"]; st != "running" {
			t.Errorf("%s: source status %v, want running", f.name, st)
		}
		if got := g.Run("echo still-$((40+2))", cmdTimeout); got != "still-42" {
			t.Errorf("%s: source answered %q", f.name, got)
		}
	}
}

// netnsPair makes two network namespaces joined by a veth pair (created
// inside them: the host's own namespace is never touched) and returns
// their names and the second one's address. They are removed at cleanup.
func netnsPair(t *testing.T) (a, b, addrB string) {
	t.Helper()
	if os.Geteuid() != 0 {
		testutil.Unavailable(t, "network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testutil.Unavailable(t, "no ip command (iproute2)")
	}
	id := fmt.Sprintf("%d%d", os.Getpid()%100000, nsSeq.Add(1))
	a, b = "vmig"+id+"a", "vmig"+id+"b"
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", a)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", a).Run() })
	ip("netns", "add", b)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", b).Run() })
	ip("-n", a, "link", "add", "mig0", "type", "veth", "peer", "name", "mig0", "netns", b)
	ip("-n", a, "addr", "add", "10.77.0.1/24", "dev", "mig0")
	ip("-n", b, "addr", "add", "10.77.0.2/24", "dev", "mig0")
	for _, ns := range []string{a, b} {
		ip("-n", ns, "link", "set", "lo", "up")
		ip("-n", ns, "link", "set", "mig0", "up")
	}
	return a, b, "10.77.0.2"
}

var nsSeq atomic.Int32

// vireoProc is a vireo process run under `ip netns exec`, driven through
// its console like testutil.Guest.
type vireoProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	out    bytes.Buffer
	stderr bytes.Buffer
	seen   int
	change chan struct{}
	done   chan struct{}
}

func startVireo(t *testing.T, netns string, args ...string) *vireoProc {
	t.Helper()
	v := &vireoProc{t: t, change: make(chan struct{}, 1), done: make(chan struct{})}
	v.cmd = exec.Command("ip", append([]string{"netns", "exec", netns, testutil.VireoBinary(t)}, args...)...)
	var err error
	if v.stdin, err = v.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	v.cmd.Stdout = procWriter{v, &v.out}
	v.cmd.Stderr = procWriter{v, &v.stderr}
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		v.cmd.Wait()
		close(v.done)
	}()
	t.Cleanup(func() {
		select {
		case <-v.done:
		default:
			v.cmd.Process.Kill()
			<-v.done
		}
		if t.Failed() {
			t.Logf("%s console:\n%s\nstderr:\n%s", netns, v.output(), v.Stderr())
		}
	})
	return v
}

type procWriter struct {
	v *vireoProc
	b *bytes.Buffer
}

func (w procWriter) Write(p []byte) (int, error) {
	w.v.mu.Lock()
	w.b.Write(p)
	w.v.mu.Unlock()
	select {
	case w.v.change <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (v *vireoProc) output() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.out.String()
}

func (v *vireoProc) Stderr() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stderr.String()
}

func (v *vireoProc) Expect(re string, timeout time.Duration) []string {
	v.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		v.mu.Lock()
		s := v.out.String()[v.seen:]
		if loc := rx.FindStringSubmatchIndex(s); loc != nil {
			m := rx.FindStringSubmatch(s)
			v.seen += loc[1]
			v.mu.Unlock()
			return m
		}
		v.mu.Unlock()
		select {
		case <-v.change:
		case <-v.done:
			if m := rx.FindStringSubmatch(v.output()[v.seen:]); m != nil {
				return m
			}
			v.t.Fatalf("vireo exited before its console matched %q", re)
		case <-deadline.C:
			v.t.Fatalf("timed out after %v waiting for the console to match %q", timeout, re)
		}
	}
}

func (v *vireoProc) Send(s string) {
	v.t.Helper()
	if _, err := io.WriteString(v.stdin, s); err != nil {
		v.t.Fatalf("writing to the console: %v", err)
	}
}

var procSeq atomic.Int32

// Run runs a shell command in the guest and returns its output, framed
// by markers the echo of the typed line cannot produce.
func (v *vireoProc) Run(command string, timeout time.Duration) string {
	v.t.Helper()
	n := 1000 + 2*int(procSeq.Add(1))
	v.Send(fmt.Sprintf("echo M$((%d+0))E; %s; echo M$((%d+1))E\n", n, command, n))
	v.Expect(fmt.Sprintf(`M%dE\r?\n`, n), timeout)
	m := v.Expect(fmt.Sprintf(`(?s)^(.*?)M%dE`, n+1), timeout)
	return strings.TrimSpace(strings.ReplaceAll(m[1], "\r", ""))
}

func (v *vireoProc) Wait(timeout time.Duration) int {
	v.t.Helper()
	select {
	case <-v.done:
	case <-time.After(timeout):
		v.t.Fatalf("vireo did not exit within %v", timeout)
	}
	return v.cmd.ProcessState.ExitCode()
}

// runner is a guest console (testutil.Guest or vireoProc).
type runner interface {
	Run(command string, timeout time.Duration) string
}

// counter reads migrateLoop's or counterScript's count.
func counter(t *testing.T, g runner) int {
	t.Helper()
	for try := 0; ; try++ {
		out := g.Run("read v < /tmp/c; echo $v", cmdTimeout)
		if n, err := strconv.Atoi(strings.TrimSpace(out)); err == nil {
			return n
		}
		if try == 3 {
			t.Fatalf("counter: %q", out)
		}
	}
}

// field returns the i-th blank-separated word of s.
func field(t *testing.T, s string, i int) string {
	t.Helper()
	f := strings.Fields(s)
	if len(f) <= i {
		t.Fatalf("no field %d in %q", i, s)
	}
	return f[i]
}

// waitSocket waits for a Unix socket to appear (a target listening).
func waitSocket(t *testing.T, path string, done <-chan struct{}) {
	t.Helper()
	// A probe connection would be taken for the source's: only look
	// for the socket file.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("vireo exited before listening on %s", path)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startProxy forwards one TCP connection (on a loopback port it returns)
// to the Unix socket target, passing the source's bytes through damage.
func startProxy(t *testing.T, target string, damage func(off int64, b []byte) ([]byte, bool)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		in, err := l.Accept()
		l.Close()
		if err != nil {
			return
		}
		defer in.Close()
		out, err := net.Dial("unix", target)
		if err != nil {
			return
		}
		defer out.Close()
		go io.Copy(in, out) // the target's acknowledgement
		buf := make([]byte, 64<<10)
		var off int64
		for {
			n, err := in.Read(buf)
			if n > 0 {
				fwd, more := damage(off, buf[:n])
				off += int64(n)
				if _, werr := out.Write(fwd); werr != nil || !more {
					return
				}
			}
			if err != nil {
				// The source closes only once it has the target's
				// answer (or has given up).
				return
			}
		}
	}()
	return l.Addr().String()
}

// migQMP is a minimal QMP client that keeps every event it sees.
type migQMP struct {
	t       *testing.T
	conn    net.Conn
	enc     *json.Encoder
	replies chan map[string]any
	mu      sync.Mutex
	events  []string // raw event messages
	change  chan struct{}
}

func dialMigQMP(t *testing.T, sock string, done <-chan struct{}) *migQMP {
	t.Helper()
	var conn net.Conn
	for deadline := time.Now().Add(30 * time.Second); ; {
		var err error
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
		select {
		case <-done:
			t.Fatalf("vireo exited before its QMP socket appeared")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("QMP socket %s: %v", sock, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	q := &migQMP{t: t, conn: conn, enc: json.NewEncoder(conn), replies: make(chan map[string]any, 1), change: make(chan struct{}, 1)}
	t.Cleanup(func() { conn.Close() })
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes('\n'); err != nil { // greeting
		t.Fatalf("QMP greeting: %v", err)
	}
	go func() {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				close(q.replies)
				return
			}
			var m map[string]any
			d := json.NewDecoder(bytes.NewReader(line))
			d.UseNumber()
			if d.Decode(&m) != nil {
				continue
			}
			if _, ok := m["event"]; ok {
				q.mu.Lock()
				q.events = append(q.events, string(bytes.TrimSpace(line)))
				q.mu.Unlock()
				select {
				case q.change <- struct{}{}:
				default:
				}
				continue
			}
			q.replies <- m
		}
	}()
	q.do("qmp_capabilities", nil)
	return q
}

func (q *migQMP) do(cmd string, args map[string]any) map[string]any {
	q.t.Helper()
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	if err := q.enc.Encode(req); err != nil {
		q.t.Fatalf("QMP %s: %v", cmd, err)
	}
	select {
	case r, ok := <-q.replies:
		if !ok {
			q.t.Fatalf("QMP %s: connection closed", cmd)
		}
		return r
	case <-time.After(cmdTimeout):
		q.t.Fatalf("QMP %s: no reply", cmd)
	}
	return nil
}

func (q *migQMP) mark() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.events)
}

func (q *migQMP) waitEvent(t *testing.T, name, contains string, timeout time.Duration) string {
	t.Helper()
	return q.waitEventFrom(t, name, contains, 0, timeout)
}

// waitEventFrom returns the first event named name, whose text contains
// contains, among the events from index from on.
func (q *migQMP) waitEventFrom(t *testing.T, name, contains string, from int, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		q.mu.Lock()
		for _, ev := range q.events[min(from, len(q.events)):] {
			if strings.Contains(ev, `"event": "`+name+`"`) && strings.Contains(ev, contains) {
				q.mu.Unlock()
				return ev
			}
		}
		q.mu.Unlock()
		select {
		case <-q.change:
		case <-deadline:
			q.mu.Lock()
			t.Fatalf("no %s event with %s within %v; events: %v", name, contains, timeout, q.events)
			q.mu.Unlock()
		}
	}
}
