package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/testutil"
)

// counterScript keeps a counter running in the guest; readCounter reads
// it back (the file is replaced atomically by rename, so reads never see
// it half-written).
const counterScript = `(i=0; while true; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/c; done) >/dev/null 2>&1 &`

func readCounter(t *testing.T, g *testutil.Guest) int {
	t.Helper()
	for try := 0; ; try++ {
		out := g.Run("read v < /tmp/c; echo $v", cmdTimeout)
		n, err := strconv.Atoi(strings.TrimSpace(out))
		if err == nil {
			return n
		}
		if try == 3 {
			t.Fatalf("counter %q: %v", out, err)
		}
		t.Logf("reading the counter: %q; again", out)
	}
}

// TestSnapshotRestore snapshots a guest running a counter, then restores
// the snapshot ten times: every restored guest continues counting from
// where the snapshot was taken, with its shell and console intact. Broken
// snapshots fail with one clear line.
func TestSnapshotRestore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "qmp.sock")
	snap := filepath.Join(dir, "snap")
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--no-reboot", "--qmp", "unix:"+sock)...)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	g.Send(counterScript + "\n")
	before := 0
	for before < 3 {
		time.Sleep(time.Second)
		before = readCounter(t, g)
	}
	code, out, stderr := testutil.RunVireo(t, 2*time.Minute, "snapshot", "create", "--qmp", "unix:"+sock, snap)
	if code != 0 {
		t.Fatalf("snapshot create: exit %d: %s", code, stderr)
	}
	t.Logf("%s", strings.TrimSpace(out))
	after := readCounter(t, g)
	// The source keeps running after a snapshot.
	if later := readCounter(t, g); later <= after {
		t.Errorf("source stopped counting after the snapshot: %d then %d", after, later)
	}
	g.Process().Kill()
	g.Wait(cmdTimeout)

	for i := 0; i < 10; i++ {
		start := time.Now()
		r := testutil.StartGuest(t, "run", "--restore", snap, "--no-reboot")
		first := readCounter(t, r)
		elapsed := time.Since(start)
		if first < before || first > after+1000000 {
			t.Fatalf("restore %d: counter %d, snapshot was taken between %d and %d", i, first, before, after)
		}
		second := readCounter(t, r)
		if second <= first {
			t.Errorf("restore %d: counter does not advance (%d then %d)", i, first, second)
		}
		t.Logf("restore %d: counter %d -> %d, first answer after %v", i, first, second, elapsed.Round(time.Millisecond))
		r.Process().Kill()
		r.Wait(cmdTimeout)
	}

	// Damaged snapshots: one clear line, non-zero exit, no panic.
	damaged := func(name string, mutate func(dir string)) {
		t.Run(name, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "snap")
			copyDir(t, snap, d)
			mutate(d)
			code, _, stderr := testutil.RunVireo(t, time.Minute, "run", "--restore", d, "--no-reboot")
			checkOneLineError(t, code, stderr, "")
			t.Logf("%s", strings.TrimSpace(stderr))
		})
	}
	damaged("truncated memory", func(d string) {
		m, _ := filepath.Glob(filepath.Join(d, "memory-*"))
		os.Truncate(m[0], 4096)
	})
	damaged("corrupt state", func(d string) {
		p := filepath.Join(d, "state")
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0x55
		os.WriteFile(p, b, 0o600)
	})
	damaged("other format version", func(d string) {
		p := filepath.Join(d, "state")
		b, _ := os.ReadFile(p)
		b[8] = 99
		os.WriteFile(p, b, 0o600)
	})
	damaged("missing memory file", func(d string) {
		m, _ := filepath.Glob(filepath.Join(d, "memory-*"))
		os.Remove(m[0])
	})
	damaged("not a snapshot", func(d string) {
		os.WriteFile(filepath.Join(d, "state"), []byte("hello"), 0o600)
	})
}

// TestSnapshotKilledMidway kills vireo while it writes snapshots over an
// existing one: the directory always holds a snapshot that restores.
func TestSnapshotKilledMidway(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "qmp.sock")
	snap := filepath.Join(dir, "snap")
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--no-reboot", "--qmp", "unix:"+sock)...)
	g.Expect(prompt, bootTimeout)
	g.Run("echo first > /root/mark", cmdTimeout)
	if code, _, stderr := testutil.RunVireo(t, 2*time.Minute, "snapshot", "create", "--qmp", "unix:"+sock, snap); code != 0 {
		t.Fatalf("snapshot create: %s", stderr)
	}
	// A second snapshot is started and the VMM killed while it runs.
	done := make(chan struct{})
	go func() {
		testutil.RunVireo(t, 2*time.Minute, "snapshot", "create", "--qmp", "unix:"+sock, snap)
		close(done)
	}()
	time.Sleep(30 * time.Millisecond)
	g.Process().Signal(syscall.SIGKILL)
	g.Wait(cmdTimeout)
	<-done

	r := testutil.StartGuest(t, "run", "--restore", snap, "--no-reboot")
	if got := r.Run("cat /root/mark", cmdTimeout); got != "first" {
		t.Fatalf("restored guest: /root/mark = %q", got)
	}
	entries, _ := os.ReadDir(snap)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	t.Logf("snapshot directory after the kill: %v", names)
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
