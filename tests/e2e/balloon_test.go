package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	qemuqmp "github.com/digitalocean/go-qemu/qmp"
	firecracker "github.com/firecracker-microvm/firecracker-go-sdk"
	"github.com/firecracker-microvm/firecracker-go-sdk/client/models"

	"github.com/vireo-vmm/vireo/internal/testutil"
)

// Every page a guest touches for the first time costs its kernel a page
// fault under this host's instruction emulator: about 2 ms on a quiet
// host, ten times that on a busy one. The balloon tests use 64 MiB guests,
// touch a few tens of MiB and allow minutes.
const (
	touchTimeout   = 15 * time.Minute
	balloonTimeout = 5 * time.Minute
	oneMiB         = 1 << 20
)

// vmRSS is a process's resident memory in bytes.
func vmRSS(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	n, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return n << 10
}

// memTotal is the guest's MemTotal in bytes.
func memTotal(t *testing.T, g *testutil.Guest) uint64 {
	t.Helper()
	out := g.Run("grep MemTotal /proc/meminfo", cmdTimeout)
	m := regexp.MustCompile(`MemTotal:\s+(\d+) kB`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("meminfo: %q", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n << 10
}

// touchGuest makes the guest fault in n MiB of fresh anonymous memory (dd's
// buffer) and free it again.
func touchGuest(t *testing.T, g *testutil.Guest, n int) string {
	t.Helper()
	return g.Run(fmt.Sprintf("dd if=/dev/zero of=/dev/null bs=%dM count=1 2>&1", n), touchTimeout)
}

// balloonActual is query-balloon's actual.
func balloonActual(t *testing.T, mon *qemuqmp.SocketMonitor) uint64 {
	t.Helper()
	var r struct {
		Return struct {
			Actual uint64 `json:"actual"`
		} `json:"return"`
	}
	out, err := mon.Run([]byte(`{"execute":"query-balloon"}`))
	if err != nil {
		t.Fatalf("query-balloon: %v", err)
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("query-balloon: %s: %v", out, err)
	}
	return r.Return.Actual
}

// setBalloon runs QMP's balloon and waits until query-balloon reports the
// guest at target bytes.
func setBalloon(t *testing.T, mon *qemuqmp.SocketMonitor, target uint64) time.Duration {
	t.Helper()
	start := time.Now()
	run(t, mon, fmt.Sprintf(`{"execute":"balloon","arguments":{"value":%d}}`, target))
	for balloonActual(t, mon) != target {
		if time.Since(start) > balloonTimeout {
			t.Fatalf("the guest is at %d MiB, not %d MiB, after %v", balloonActual(t, mon)>>20, target>>20, balloonTimeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return time.Since(start)
}

// hostMemory is x-query-vireo-memory's result.
type hostMemory struct {
	GuestMemory     uint64 `json:"guest-memory"`
	HugePages       string `json:"huge-pages"`
	Merge           bool   `json:"merge"`
	Resident        uint64 `json:"resident"`
	AnonHugePages   uint64 `json:"anon-huge-pages"`
	Hugetlb         uint64 `json:"hugetlb"`
	KSMMergingPages uint64 `json:"ksm-merging-pages"`
	Balloon         *struct {
		Target    uint64            `json:"target"`
		Actual    uint64            `json:"actual"`
		Discarded uint64            `json:"discarded"`
		Reported  uint64            `json:"reported"`
		Stats     map[string]uint64 `json:"stats"`
	} `json:"balloon"`
}

func queryMemory(t *testing.T, mon *qemuqmp.SocketMonitor) hostMemory {
	t.Helper()
	out, err := mon.Run([]byte(`{"execute":"x-query-vireo-memory"}`))
	if err != nil {
		t.Fatalf("x-query-vireo-memory: %v", err)
	}
	var r struct {
		Return hostMemory `json:"return"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("x-query-vireo-memory: %s: %v", out, err)
	}
	return r.Return
}

func hmpLine(t *testing.T, mon *qemuqmp.SocketMonitor, line string) string {
	t.Helper()
	r := run(t, mon, fmt.Sprintf(`{"execute":"human-monitor-command","arguments":{"command-line":%q}}`, line))
	s, _ := r["return"].(string)
	return s
}

// TestBalloonInflateDeflate: after the guest has touched most of its
// memory, inflating the balloon by N MiB through QMP returns at least
// 0.8 N MiB to the host (the VMM's RSS falls), the guest sees N MiB less,
// BALLOON_CHANGE events report the progress and the statistics queue
// brings the guest's figures; deflating gives the memory back and the
// guest can allocate it again.
//
// The guest kernel runs with init_on_free=1: it clears every page it
// frees, at boot too, so all of its free memory is resident on the host,
// as in a guest that has run for a while, and whichever pages the balloon
// takes were resident. (A guest program touching that much memory first
// costs minutes of page faults on this host.)
func TestBalloonInflateDeflate(t *testing.T) {
	t.Parallel()
	const memory, n = 64 * oneMiB, 16 * oneMiB
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--memory", "64M", "--balloon=stats=1", "--no-reboot",
		"--cmdline", testutil.DefaultCmdline(t)+" init_on_free=1",
		"--qmp", "unix:"+sock+",server=on,wait=off")...)
	mon := dialQMP(t, g, sock)
	evch, err := mon.Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	events := collectEvents(evch)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	pid := g.Process().Pid

	if got := g.Run("cat /sys/bus/virtio/devices/virtio0/device", cmdTimeout); got != "0x0005" {
		t.Fatalf("virtio0 is device %q, want the balloon (0x0005)", got)
	}
	if got := balloonActual(t, mon); got != memory {
		t.Errorf("query-balloon actual %d before inflating, want %d", got, memory)
	}
	total := memTotal(t, g)
	if hm := queryMemory(t, mon); hm.Resident < total*9/10 {
		t.Fatalf("only %d MiB of guest RAM resident (MemTotal %d MiB): init_on_free=1 did not clear the free memory", hm.Resident>>20, total>>20)
	}
	before := vmRSS(t, pid)

	mark := events.mark()
	took := setBalloon(t, mon, memory-n)
	after := vmRSS(t, pid)
	t.Logf("inflating %d MiB took %v; VMM RSS %d MiB -> %d MiB", n>>20, took, before>>20, after>>20)
	if before < after || before-after < n*8/10 {
		t.Errorf("inflating %d MiB lowered the VMM's RSS by %d MiB, want at least %d MiB", n>>20, (int64(before)-int64(after))>>20, n*8/10>>20)
	}
	ev := events.wait(t, "BALLOON_CHANGE", mark, cmdTimeout)
	if a, ok := ev.Data["actual"].(float64); !ok || a >= memory || a < memory-n {
		t.Errorf("BALLOON_CHANGE data %v", ev.Data)
	}
	if shrunk := total - memTotal(t, g); shrunk < n-oneMiB || shrunk > n+oneMiB {
		t.Errorf("guest MemTotal fell by %d KiB, want about %d KiB", shrunk>>10, n>>10)
	}
	if out := hmpLine(t, mon, "info balloon"); !strings.Contains(out, fmt.Sprintf("balloon: actual=%d", (memory-n)>>20)) {
		t.Errorf("info balloon: %q", out)
	}
	// Statistics arrive every second; the 6.1 guest without VM event
	// counters sends its memory sizes.
	deadline := time.Now().Add(cmdTimeout)
	hm := queryMemory(t, mon)
	for hm.Balloon == nil || hm.Balloon.Stats["total_memory"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no statistics from the guest: %+v", hm.Balloon)
		}
		time.Sleep(time.Second)
		hm = queryMemory(t, mon)
	}
	if b := hm.Balloon; b.Target != n || b.Actual != n || b.Discarded < n*8/10 || b.Stats["total_memory"] > memory || b.Stats["free_memory"] == 0 {
		t.Errorf("x-query-vireo-memory balloon %+v", b)
	}
	if out := hmpLine(t, mon, "info vireo-memory"); !strings.Contains(out, "balloon: target 16 MiB, actual 16 MiB") || !strings.Contains(out, "balloon stat total_memory:") {
		t.Errorf("info vireo-memory:\n%s", out)
	}
	// While inflated the guest has less memory than 40 MiB (Linux refuses
	// the allocation at once).
	if out := touchGuest(t, g, 40); strings.Contains(out, "1+0 records out") {
		t.Errorf("the inflated guest allocated 40 MiB: %q", out)
	}

	took = setBalloon(t, mon, memory)
	t.Logf("deflating took %v", took)
	if got := memTotal(t, g); got != total {
		t.Errorf("guest MemTotal %d KiB after deflating, want %d KiB", got>>10, total>>10)
	}
	if out := touchGuest(t, g, 40); !strings.Contains(out, "1+0 records out") {
		t.Errorf("after deflating the guest cannot allocate 40 MiB: %q", out)
	}
	// The pages came back to the guest, which clears them when it frees
	// them (init_on_free=1) or uses them: the VMM's RSS is back to where
	// it was before inflating.
	if high := vmRSS(t, pid); high+n*2/10 < before {
		t.Errorf("after deflating and allocating, the VMM's RSS is %d MiB, it was %d MiB before inflating", high>>20, before>>20)
	}
	g.Send("reboot -f\n")
	if code := g.Wait(cmdTimeout); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// TestBalloonFreePageReporting: memory the guest frees is reported and
// returned to the host without any balloon target. Linux 6.1 reports free
// blocks of 4 MiB (pageblock_order on the test kernel), and only while
// its zone has more than 32 of them free beyond the low watermark: the
// guest needs more than 128 MiB free, hence 256 MiB.
func TestBalloonFreePageReporting(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--memory", "256M", "--balloon=free-page-reporting=on", "--no-reboot",
		"--qmp", "unix:"+sock+",server=on,wait=off")...)
	mon := dialQMP(t, g, sock)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	pid := g.Process().Pid
	if got := g.Run("cat /sys/bus/virtio/devices/virtio0/features", cmdTimeout); len(got) < 6 || got[5] != '1' {
		t.Fatalf("the guest did not accept VIRTIO_BALLOON_F_PAGE_REPORTING: features %q", got)
	}
	start := vmRSS(t, pid)
	// A file in a tmpfs: the guest's page cache holds it until rm.
	if out := g.Run("mount -t tmpfs -o size=40M none /mnt && dd if=/dev/zero of=/mnt/fill bs=1M count=24 2>&1", touchTimeout); !strings.Contains(out, "24+0 records out") {
		t.Fatalf("filling tmpfs: %q", out)
	}
	peak := vmRSS(t, pid)
	if peak < start+16*oneMiB {
		t.Fatalf("writing 24 MiB raised the VMM's RSS only from %d MiB to %d MiB", start>>20, peak>>20)
	}
	g.Run("rm /mnt/fill", touchTimeout) // the guest kernel frees 6144 pages
	deadline := time.Now().Add(balloonTimeout)
	for {
		now := vmRSS(t, pid)
		if peak-now >= 12*oneMiB {
			t.Logf("VMM RSS %d MiB -> %d MiB -> %d MiB after the guest freed 24 MiB", start>>20, peak>>20, now>>20)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the VMM's RSS stayed at %d MiB (peak %d MiB) after the guest freed 24 MiB", now>>20, peak>>20)
		}
		time.Sleep(time.Second)
	}
	if b := queryMemory(t, mon).Balloon; b == nil || b.Reported < 12*oneMiB || b.Target != 0 {
		t.Errorf("x-query-vireo-memory balloon %+v", b)
	}
	// The reported memory is the guest's to use again.
	if out := touchGuest(t, g, 24); !strings.Contains(out, "1+0 records out") {
		t.Errorf("allocating after the reports: %q", out)
	}
	g.Send("reboot -f\n")
	g.Wait(cmdTimeout)
}

// smapsOf sums fields of the mappings of a process that are exactly size
// bytes large (guest RAM; its guard pages are separate mappings).
func smapsOf(t *testing.T, pid int, size uint64) map[string]uint64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	header := regexp.MustCompile(`^([0-9a-f]+)-([0-9a-f]+) `)
	out := map[string]uint64{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if m := header.FindStringSubmatch(l); m != nil {
			a, _ := strconv.ParseUint(m[1], 16, 64)
			b, _ := strconv.ParseUint(m[2], 16, 64)
			in = b-a == size
			if in {
				out["mappings"]++
			}
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !in || !ok {
			continue
		}
		if f := strings.Fields(v); len(f) == 2 && f[1] == "kB" {
			n, _ := strconv.ParseUint(f[0], 10, 64)
			out[k] += n << 10
		}
	}
	return out
}

// writeSys writes a sysfs or procfs knob and restores its old value when
// the test ends.
func writeSys(t *testing.T, path, value string) {
	t.Helper()
	old, err := os.ReadFile(path)
	if err != nil {
		testutil.Unavailable(t, "%s: %v", path, err)
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		testutil.Unavailable(t, "cannot set %s (root needed): %v", path, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(path, old, 0o644); err != nil {
			t.Errorf("restoring %s: %v", path, err)
		}
	})
}

func readSys(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// TestKSMMergesTwoGuests boots two guests with identical memory and
// merge=on: with KSM running (the test starts it and restores the host's
// settings after), the pages they share are merged.
func TestKSMMergesTwoGuests(t *testing.T) {
	t.Parallel()
	const ksm = "/sys/kernel/mm/ksm/"
	if _, err := os.Stat(ksm + "run"); err != nil {
		testutil.Unavailable(t, "no KSM on this host: %v", err)
	}
	var guests [2]*testutil.Guest
	var mons [2]*qemuqmp.SocketMonitor
	for i := range guests {
		sock := filepath.Join(t.TempDir(), "qmp.sock")
		guests[i] = testutil.StartGuest(t, guestArgs(t, "vmlinux", "--memory", "size=96M,merge=on", "--no-reboot",
			"--qmp", "unix:"+sock+",server=on,wait=off")...)
		mons[i] = dialQMP(t, guests[i], sock)
	}
	for _, g := range guests {
		g.Expect("VIREO-BOOT-OK", bootTimeout)
	}
	writeSys(t, ksm+"sleep_millisecs", "10")
	writeSys(t, ksm+"pages_to_scan", "2000")
	writeSys(t, ksm+"run", "1")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var merging [2]uint64
		for i, g := range guests {
			merging[i] = readSys(t, fmt.Sprintf("/proc/%d/ksm_merging_pages", g.Process().Pid))
		}
		sharing := readSys(t, ksm+"pages_sharing")
		if merging[0] > 0 && merging[1] > 0 && sharing > 0 {
			t.Logf("KSM: %d and %d guest pages merged, %d pages sharing host-wide", merging[0], merging[1], sharing)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("KSM merged %v guest pages (pages_sharing %d) within 2 minutes", merging, sharing)
		}
		time.Sleep(time.Second)
	}
	if hm := queryMemory(t, mons[0]); !hm.Merge || hm.KSMMergingPages == 0 {
		t.Errorf("x-query-vireo-memory: merge %v, %d pages merging", hm.Merge, hm.KSMMergingPages)
	}
	if flags := smapsOf(t, guests[0].Process().Pid, 96*oneMiB); flags["mappings"] != 1 {
		t.Errorf("guest RAM mapping not found: %v", flags)
	}
}

// TestHugePageBacking starts guests with transparent huge pages and with
// hugetlbfs pages (reserving them for the test) and finds the huge pages
// in the guest RAM mapping of /proc/PID/smaps and in x-query-vireo-memory.
// The guests need not boot: loading the kernel already touches RAM.
func TestHugePageBacking(t *testing.T) {
	t.Parallel()
	start := func(t *testing.T, memory string) (*testutil.Guest, *qemuqmp.SocketMonitor) {
		sock := filepath.Join(t.TempDir(), "qmp.sock")
		g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--memory", memory, "--no-reboot",
			"--qmp", "unix:"+sock+",server=on,wait=off")...)
		mon := dialQMP(t, g, sock)
		deadline := time.Now().Add(cmdTimeout)
		for !strings.Contains(fmt.Sprint(run(t, mon, `{"execute":"query-status"}`)), "status:running") {
			if time.Now().After(deadline) {
				t.Fatal("the VM never ran")
			}
			time.Sleep(100 * time.Millisecond)
		}
		return g, mon
	}
	wait := func(t *testing.T, what string, cond func() bool) {
		deadline := time.Now().Add(cmdTimeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within %v", what, cmdTimeout)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Run("thp", func(t *testing.T) {
		thp, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
		if !strings.Contains(string(thp), "[always]") && !strings.Contains(string(thp), "[madvise]") {
			testutil.Unavailable(t, "transparent huge pages are %q here", strings.TrimSpace(string(thp)))
		}
		g, mon := start(t, "size=128M,hugepages=thp")
		pid := g.Process().Pid
		wait(t, "AnonHugePages in the guest RAM mapping", func() bool { return smapsOf(t, pid, 128*oneMiB)["AnonHugePages"] > 0 })
		hm := queryMemory(t, mon)
		if hm.HugePages != "thp" || hm.AnonHugePages == 0 || hm.GuestMemory != 128*oneMiB {
			t.Errorf("x-query-vireo-memory %+v", hm)
		}
		if out := hmpLine(t, mon, "info vireo-memory"); !strings.Contains(out, "huge pages: thp") {
			t.Errorf("info vireo-memory:\n%s", out)
		}
	})
	t.Run("hugetlbfs", func(t *testing.T) {
		const pool = "/proc/sys/vm/nr_hugepages"
		have := readSys(t, pool)
		writeSys(t, pool, strconv.FormatUint(have+72, 10))
		if got := readSys(t, pool); got < have+64 {
			testutil.Unavailable(t, "the host reserved only %d of %d huge pages", got-have, 72)
		}
		g, mon := start(t, "size=128M,hugepages=on")
		defer func() { g.Process().Kill(); <-g.Done() }() // free the pages before the pool shrinks back
		pid := g.Process().Pid
		wait(t, "hugetlbfs pages in the guest RAM mapping", func() bool {
			s := smapsOf(t, pid, 128*oneMiB)
			return s["Private_Hugetlb"]+s["Shared_Hugetlb"] > 0 && s["KernelPageSize"] >= 2*oneMiB
		})
		if hm := queryMemory(t, mon); hm.HugePages != "hugetlbfs" || hm.Hugetlb == 0 {
			t.Errorf("x-query-vireo-memory %+v", hm)
		}
	})
}

// TestBalloonFirecrackerSDK drives the balloon through firecracker-go-sdk
// as a Firecracker user would: created before boot with statistics every
// second, then resized with PATCH /balloon and watched through
// GET /balloon/statistics.
func TestBalloonFirecrackerSDK(t *testing.T) {
	t.Parallel()
	cfg := firecracker.Config{
		SocketPath:      filepath.Join(shortTempDir(t), "api.sock"),
		KernelImagePath: requireGuest(t, "vmlinux"),
		InitrdPath:      testutil.DefaultInitrd(t),
		KernelArgs:      testutil.DefaultCmdline(t),
		MachineCfg:      models.MachineConfiguration{VcpuCount: firecracker.Int64(1), MemSizeMib: firecracker.Int64(128)},
	}
	v := startSDK(t, cfg, func(m *firecracker.Machine) {
		m.Handlers.FcInit = m.Handlers.FcInit.Append(firecracker.NewCreateBalloonHandler(0, false, 1))
	})
	v.con.expect(t, "VIREO-BOOT-OK", bootTimeout)
	ctx := context.Background()
	if b, err := v.m.GetBalloonConfig(ctx); err != nil || *b.AmountMib != 0 || b.StatsPollingIntervals != 1 {
		t.Fatalf("GET /balloon = %+v, %v", b, err)
	}
	stats := func() models.BalloonStats {
		t.Helper()
		s, err := v.m.GetBalloonStats(ctx)
		if err != nil {
			t.Fatalf("GET /balloon/statistics: %v", err)
		}
		return s
	}
	waitStats := func(what string, cond func(models.BalloonStats) bool) models.BalloonStats {
		t.Helper()
		deadline := time.Now().Add(balloonTimeout)
		for {
			s := stats()
			if cond(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: statistics %+v", what, s)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	s := waitStats("the guest's figures", func(s models.BalloonStats) bool { return s.TotalMemory > 0 && s.FreeMemory > 0 })
	if s.TotalMemory > 128*oneMiB || *s.ActualMib != 0 {
		t.Errorf("statistics before inflating %+v", s)
	}
	if err := v.m.UpdateBalloon(ctx, 16); err != nil {
		t.Fatal(err)
	}
	s = waitStats("16 MiB in the balloon", func(s models.BalloonStats) bool { return *s.ActualMib == 16 })
	if *s.TargetMib != 16 || *s.TargetPages != 4096 || *s.ActualPages != 4096 {
		t.Errorf("statistics after inflating %+v", s)
	}
	if err := v.m.UpdateBalloonStats(ctx, 2); err != nil {
		t.Errorf("PATCH /balloon/statistics: %v", err)
	}
	if err := v.m.UpdateBalloon(ctx, 1000); err == nil {
		t.Error("a balloon larger than the guest was accepted")
	}
	if err := v.m.UpdateBalloon(ctx, 0); err != nil {
		t.Fatal(err)
	}
	waitStats("an empty balloon", func(s models.BalloonStats) bool { return *s.ActualMib == 0 })
	if got := v.run("echo $((6*7))"); got != "42" {
		t.Errorf("guest after deflating: %q", got)
	}
}
