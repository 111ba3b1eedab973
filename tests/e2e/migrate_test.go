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

	src := testutil.StartGuestUnder(t, []string{"ip", "netns", "exec", nsA}, "run", "--kernel", kernel, "--initrd", initrd, "--no-reboot",
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
	tgt := testutil.StartGuestUnder(t, []string{"ip", "netns", "exec", nsB}, "run", "--incoming", "tcp:"+addrB+":4444", "--no-reboot", "--qmp", "unix:"+tgtSock)
	tq := dialMigQMP(t, tgtSock, tgt.Done())
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
	g, q, sock := bootMigSource(t, dir)

	tgt1 := filepath.Join(dir, "t1.sock")
	target := startIncoming(t, tgt1)
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
	target2 := startIncoming(t, tgt2, "--qmp", "unix:"+tq2sock)
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
	g, q, _ := bootMigSource(t, dir)
	g.Send(counterScript + "\n")

	var victim *testutil.Guest // the target the "target killed" case kills
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
		{"target killed", func(off int64, b []byte) ([]byte, bool) {
			if off+int64(len(b)) > 2<<20 && victim != nil {
				victim.Process().Kill() // SIGKILL half-way through pass 1
				victim = nil
			}
			return b, true
		}, "killed"},
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
		target := startIncoming(t, tsock)
		if f.want == "killed" {
			victim = target
		}
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
		if f.want == "killed" {
			if code == 0 {
				t.Errorf("%s: the killed target exited 0", f.name)
			}
		} else {
			checkOneLineError(t, code, target.Stderr(), f.want)
		}
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

// counter reads migrateLoop's or counterScript's count.
func counter(t *testing.T, g *testutil.Guest) int {
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

// bootMigSource boots the guest with a QMP socket in dir, waits for its
// shell and connects a migQMP client; it returns the guest, the client
// and the socket's path.
func bootMigSource(t *testing.T, dir string) (*testutil.Guest, *migQMP, string) {
	t.Helper()
	sock := filepath.Join(dir, "qmp.sock")
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--no-reboot", "--qmp", "unix:"+sock)...)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	return g, dialMigQMP(t, sock, g.Done()), sock
}

// startIncoming starts a vireo waiting for a migration on the Unix
// socket sock, with extra flags args, once it listens.
func startIncoming(t *testing.T, sock string, args ...string) *testutil.Guest {
	t.Helper()
	g := testutil.StartGuest(t, append([]string{"run", "--incoming", "unix:" + sock, "--no-reboot"}, args...)...)
	waitSocket(t, sock, g.Done())
	return g
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
