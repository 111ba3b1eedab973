package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	goqmp "github.com/0xef53/go-qmp/v2"
	qemuqmp "github.com/digitalocean/go-qemu/qmp"

	"github.com/vireo-vmm/vireo/internal/testutil"
)

// eventLog collects the events of a go-qemu monitor, which must be read
// continuously or its reader stalls.
type eventLog struct {
	mu     sync.Mutex
	events []qemuqmp.Event
	change chan struct{}
}

func collectEvents(ch <-chan qemuqmp.Event) *eventLog {
	l := &eventLog{change: make(chan struct{}, 1)}
	go func() {
		for ev := range ch {
			l.mu.Lock()
			l.events = append(l.events, ev)
			l.mu.Unlock()
			select {
			case l.change <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

// mark is the number of events so far: wait looks only at later ones.
func (l *eventLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// wait returns the first event named name at or after index from.
func (l *eventLog) wait(t *testing.T, name string, from int, timeout time.Duration) qemuqmp.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		for _, ev := range l.events[min(from, len(l.events)):] {
			if ev.Event == name {
				l.mu.Unlock()
				return ev
			}
		}
		l.mu.Unlock()
		select {
		case <-l.change:
		case <-deadline:
			t.Fatalf("no %s event within %v", name, timeout)
		}
	}
}

// dialQMP connects go-qemu's socket monitor once vireo has created the socket.
func dialQMP(t *testing.T, g *testutil.Guest, sock string) *qemuqmp.SocketMonitor {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mon, err := qemuqmp.NewSocketMonitor("unix", sock, 2*time.Second)
		if err == nil {
			if err := mon.Connect(); err != nil {
				t.Fatalf("go-qemu Connect: %v", err)
			}
			t.Cleanup(func() { mon.Disconnect() })
			return mon
		}
		select {
		case <-g.Done():
			t.Fatalf("vireo exited before its QMP socket appeared")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("QMP socket %s never appeared: %v", sock, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func run(t *testing.T, mon *qemuqmp.SocketMonitor, cmd string) map[string]any {
	t.Helper()
	out, err := mon.Run([]byte(cmd))
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	var r map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%s: reply %q: %v", cmd, out, err)
	}
	return r
}

// TestQMP boots the guest with a QMP socket and manages it with two
// independent QMP client libraries, go-qemu and go-qmp, the way they
// manage QEMU: status, stop and cont (checking the guest really stops),
// vCPU threads, the human monitor, powerdown, reset and quit.
func TestQMP(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	g := testutil.StartGuest(t, guestArgs(t, "vmlinux", "--cpus", "2", "--memory", "128M",
		"--qmp", "unix:"+sock+",server=on,wait=off")...)

	mon := dialQMP(t, g, sock)
	if mon.Version == nil || mon.Version.QEMU.Major != 7 || mon.Version.QEMU.Minor != 2 || !strings.HasPrefix(mon.Version.Package, "vireo-") {
		t.Errorf("greeting version %+v", mon.Version)
	}
	evch, err := mon.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	events := collectEvents(evch)

	mon2, err := goqmp.NewMonitor(sock, 5*time.Second)
	if err != nil {
		t.Fatalf("go-qmp NewMonitor: %v", err)
	}
	defer mon2.Close()

	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)

	// query-status from both clients.
	if r := run(t, mon, `{"execute":"query-status"}`); fmt.Sprint(r["return"]) != "map[running:true singlestep:false status:running]" {
		t.Errorf("query-status: %v", r)
	}
	var st struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	if err := mon2.Run(goqmp.Command{Name: "query-status"}, &st); err != nil || st.Status != "running" || !st.Running {
		t.Errorf("go-qmp query-status: %+v, %v", st, err)
	}

	// stop: both clients see STOP, and the guest does nothing while
	// paused: a command typed now is not answered.
	since := uint64(time.Now().Unix())
	m := events.mark()
	run(t, mon, `{"execute":"stop"}`)
	events.wait(t, "STOP", m, cmdTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	if _, err := mon2.GetEvents(ctx, "STOP", since); err != nil {
		t.Errorf("go-qmp: no STOP event: %v", err)
	}
	cancel()
	if err := mon2.Run(goqmp.Command{Name: "query-status"}, &st); err != nil || st.Status != "paused" || st.Running {
		t.Errorf("query-status while paused: %+v, %v", st, err)
	}
	before := len(g.Output())
	g.Send("echo PAUSED-$((40+2))\n")
	time.Sleep(3 * time.Second)
	if out := g.Output()[before:]; strings.Contains(out, "PAUSED-42") {
		t.Fatalf("the paused guest answered: %q", out)
	}

	// cont: RESUME, and the guest runs the command typed while paused.
	m = events.mark()
	run(t, mon, `{"execute":"cont"}`)
	events.wait(t, "RESUME", m, cmdTimeout)
	g.Expect("PAUSED-42", cmdTimeout)
	if got := g.Run("echo $((6*7))", cmdTimeout); got != "42" {
		t.Errorf("after cont: %q", got)
	}

	// query-cpus-fast: the thread ids are threads of the vireo process.
	var cpus []struct {
		CPUIndex int    `json:"cpu-index"`
		ThreadID int    `json:"thread-id"`
		QOMPath  string `json:"qom-path"`
	}
	if err := mon2.Run(goqmp.Command{Name: "query-cpus-fast"}, &cpus); err != nil {
		t.Fatal(err)
	}
	if len(cpus) != 2 {
		t.Fatalf("query-cpus-fast: %+v", cpus)
	}
	pid := g.Process().Pid
	for i, c := range cpus {
		if c.CPUIndex != i || c.ThreadID == pid {
			t.Errorf("cpu %d: %+v", i, c)
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d", pid, c.ThreadID)); err != nil {
			t.Errorf("vCPU %d thread %d is not a thread of vireo (pid %d): %v", i, c.ThreadID, pid, err)
		}
	}

	// The human monitor, through go-qmp's helper.
	if out, err := mon2.RunHuman("info status"); err != nil || out != "VM status: running\r\n" {
		t.Errorf("info status: %q, %v", out, err)
	}
	if out, err := mon2.RunHuman("info cpus"); err != nil || !strings.Contains(out, fmt.Sprintf("CPU #1: thread_id=%d", cpus[1].ThreadID)) {
		t.Errorf("info cpus: %q, %v", out, err)
	}

	// system_powerdown: POWERDOWN, and Ctrl+Alt+Del reaches the guest's
	// keyboard controller. The test kernel has no i8042 driver (so nothing
	// reacts to the keys): the shell reads the controller through
	// /dev/port, status port 0x64 (output-buffer-full bit) then the eight
	// scan codes at port 0x60 (set 1: Ctrl, Alt, Del make; their breaks).
	m = events.mark()
	run(t, mon, `{"execute":"system_powerdown"}`)
	events.wait(t, "POWERDOWN", m, cmdTimeout)
	status := g.Run("dd if=/dev/port bs=1 skip=100 count=1 2>/dev/null | od -An -tx1", cmdTimeout)
	var sb int
	if _, err := fmt.Sscanf(strings.TrimSpace(status), "%x", &sb); err != nil || sb&1 == 0 {
		t.Errorf("i8042 status after powerdown = %q: want the output-buffer-full bit", status)
	}
	keys := g.Run("for i in 1 2 3 4 5 6 7 8; do dd if=/dev/port bs=1 skip=96 count=1 2>/dev/null; done | od -An -tx1", cmdTimeout)
	if got := strings.Join(strings.Fields(keys), " "); got != "1d 38 e0 53 e0 d3 b8 9d" {
		t.Errorf("keyboard bytes after powerdown = %q, want Ctrl+Alt+Del (1d 38 e0 53 e0 d3 b8 9d)", got)
	}

	// system_reset: RESET, and the guest boots again; the clients stay.
	m = events.mark()
	run(t, mon, `{"execute":"system_reset"}`)
	ev := events.wait(t, "RESET", m, cmdTimeout)
	if ev.Data["guest"] != false || ev.Data["reason"] != "host-qmp-system-reset" {
		t.Errorf("RESET data %v", ev.Data)
	}
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	if r := run(t, mon, `{"execute":"query-status"}`); !strings.Contains(fmt.Sprint(r), "status:running") {
		t.Errorf("query-status after reset: %v", r)
	}

	// quit through go-qmp: SHUTDOWN to the other client, then exit 0.
	m = events.mark()
	if err := mon2.Run(goqmp.Command{Name: "quit"}, nil); err != nil {
		t.Errorf("quit: %v", err)
	}
	ev = events.wait(t, "SHUTDOWN", m, cmdTimeout)
	if ev.Data["guest"] != false || ev.Data["reason"] != "host-qmp-quit" {
		t.Errorf("SHUTDOWN data %v", ev.Data)
	}
	if code := g.Wait(cmdTimeout); code != 0 {
		t.Errorf("exit code %d after quit, want 0", code)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("QMP socket left behind: %v", err)
	}
}
