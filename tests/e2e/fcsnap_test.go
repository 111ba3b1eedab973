package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	firecracker "github.com/firecracker-microvm/firecracker-go-sdk"
	"github.com/firecracker-microvm/firecracker-go-sdk/client/models"
	ops "github.com/firecracker-microvm/firecracker-go-sdk/client/operations"
	"github.com/sirupsen/logrus"

	"github.com/vireo-vmm/vireo/internal/testutil"
)

// sdkVM is a `vireo run --api-sock` process started by firecracker-go-sdk,
// with its console.
type sdkVM struct {
	t     *testing.T
	m     *firecracker.Machine
	cmd   *exec.Cmd
	con   *consoleBuffer
	stdin io.WriteCloser
}

var sdkSeq struct {
	sync.Mutex
	n int
}

// startSDK runs vireo through the SDK: a boot when cfg has a kernel, a
// snapshot load with firecracker.WithSnapshot in opts.
func startSDK(t *testing.T, cfg firecracker.Config, opts ...firecracker.Opt) *sdkVM {
	t.Helper()
	os.Setenv("FIRECRACKER_GO_SDK_INIT_TIMEOUT_SECONDS", "60")
	v := &sdkVM{t: t, con: newConsoleBuffer()}
	v.cmd = exec.Command(testutil.VireoBinary(t), "run", "--api-sock", cfg.SocketPath)
	var stderr bytes.Buffer
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	v.stdin = stdinW
	v.cmd.Stdout, v.cmd.Stderr, v.cmd.Stdin = v.con, &stderr, stdinR
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	opts = append(opts, firecracker.WithProcessRunner(v.cmd), firecracker.WithLogger(logrus.NewEntry(logger)))
	v.m, err = firecracker.NewMachine(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdinW.Close()
		if v.cmd.Process != nil {
			v.kill()
		}
		if t.Failed() {
			t.Logf("%s console:\n%s\nstderr:\n%s", cfg.SocketPath, v.con.String(), stderr.String())
		}
	})
	if err := v.m.Start(context.Background()); err != nil {
		t.Fatalf("SDK Start: %v\nstderr: %s", err, stderr.String())
	}
	stdinR.Close()
	return v
}

// run runs a shell command in the guest and returns its output, framed
// by markers the shell's echo of the typed line cannot produce.
func (v *sdkVM) run(command string) string {
	v.t.Helper()
	sdkSeq.Lock()
	sdkSeq.n++
	n := sdkSeq.n
	sdkSeq.Unlock()
	fmt.Fprintf(v.stdin, "echo S$((%d+0))E; %s; echo S$((%d+1))E\n", n*2, command, n*2)
	v.con.expect(v.t, fmt.Sprintf(`S%dE\r?\n`, n*2), cmdTimeout)
	rx := regexp.MustCompile(fmt.Sprintf(`(?s)^(.*?)S%dE`, n*2+1))
	deadline := time.Now().Add(cmdTimeout)
	for {
		v.con.mu.Lock()
		rest := v.con.buf.String()[v.con.seen:]
		v.con.mu.Unlock()
		if m := rx.FindStringSubmatch(rest); m != nil {
			v.con.mu.Lock()
			v.con.seen += len(m[0])
			v.con.mu.Unlock()
			return strings.TrimSpace(strings.ReplaceAll(m[1], "\r", ""))
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("no output of %q within %v", command, cmdTimeout)
		}
		select {
		case <-v.con.change:
		case <-time.After(time.Second):
		}
	}
}

// kill ends the VMM at once, as a crash would. The SDK waits for the
// process itself; kill waits for the SDK to see it end.
func (v *sdkVM) kill() {
	v.cmd.Process.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	v.m.Wait(ctx)
}

func diffSnapshot(p *ops.CreateSnapshotParams) {
	p.Body.SnapshotType = models.SnapshotCreateParamsSnapshotTypeDiff
}

func resumeVM(c *firecracker.SnapshotConfig) { c.ResumeVM = true }

// faultOf returns the fault message of a refused SDK call.
func faultOf(err error) string {
	var c *ops.CreateSnapshotBadRequest
	var l *ops.LoadSnapshotBadRequest
	switch {
	case errors.As(err, &c) && c.Payload != nil && c.Payload.FaultMessage != "":
		return c.Payload.FaultMessage
	case errors.As(err, &l) && l.Payload != nil && l.Payload.FaultMessage != "":
		return l.Payload.FaultMessage
	case err != nil:
		return err.Error()
	}
	return ""
}

// mergeLayer copies the data blocks of a diff layer over a base memory
// file, as Firecracker's snapshot-editor rebase does.
func mergeLayer(t *testing.T, layer, base string) {
	t.Helper()
	src, err := os.Open(layer)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(base, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	const seekData, seekHole = 3, 4
	st, _ := src.Stat()
	for off := int64(0); off < st.Size(); {
		data, err := src.Seek(off, seekData)
		if err != nil {
			break // ENXIO: only a hole remains
		}
		hole, err := src.Seek(data, seekHole)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.NewOffsetWriter(dst, data), io.NewSectionReader(src, data, hole-data)); err != nil {
			t.Fatal(err)
		}
		off = hole
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "--sparse=always", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp %s %s: %v %s", from, to, err, out)
	}
}

// TestFirecrackerSnapshots drives Vireo's Firecracker snapshot endpoints
// with firecracker-go-sdk: one boot with dirty page tracking, a Full
// snapshot, a Diff merged into the Full one's memory file and a Diff to a
// new layer; loads of each through the SDK's WithSnapshot in fresh
// processes, with the guest's files as they were; refusals with
// Firecracker's messages; damaged snapshots that fail one load and leave
// the process able to load a good one; and a VMM killed while it
// overwrites a snapshot, which always leaves one that loads.
func TestFirecrackerSnapshots(t *testing.T) {
	t.Parallel()
	kernel := requireGuest(t, "vmlinux")
	dir := shortTempDir(t)
	p := func(name string) string { return filepath.Join(dir, name) }
	ctx := context.Background()

	src := startSDK(t, firecracker.Config{
		SocketPath:      p("src.sock"),
		KernelImagePath: kernel,
		InitrdPath:      testutil.DefaultInitrd(t),
		KernelArgs:      testutil.DefaultCmdline(t),
		MachineCfg: models.MachineConfiguration{
			VcpuCount: firecracker.Int64(1), MemSizeMib: firecracker.Int64(128), TrackDirtyPages: true,
		},
	})
	src.con.expect(t, "VIREO-BOOT-OK", bootTimeout)
	src.con.expect(t, prompt, cmdTimeout)
	src.run("echo one > /root/m1")

	// Firecracker's rules: a running VM is not snapshotted, and a Diff
	// needs a Full snapshot before it.
	err := src.m.CreateSnapshot(ctx, p("mem"), p("s1"))
	if msg := faultOf(err); !strings.Contains(msg, "save/restore unavailable while running") {
		t.Fatalf("snapshot of a running VM: %v", err)
	}
	if err := src.m.PauseVM(ctx); err != nil {
		t.Fatal(err)
	}
	err = src.m.CreateSnapshot(ctx, p("mem"), p("s1"), diffSnapshot)
	if msg := faultOf(err); !strings.Contains(msg, "needs a previous snapshot") {
		t.Fatalf("first snapshot a Diff: %v", err)
	}
	// s1: Full.
	if err := src.m.CreateSnapshot(ctx, p("mem"), p("s1")); err != nil {
		t.Fatalf("Full snapshot: %v", err)
	}
	copyFile(t, p("mem"), p("mem1"))
	if err := src.m.ResumeVM(ctx); err != nil {
		t.Fatal(err)
	}
	// s2: a Diff merged into the Full snapshot's memory file.
	src.run("echo two > /root/m2")
	src.m.PauseVM(ctx)
	start := time.Now()
	if err := src.m.CreateSnapshot(ctx, p("mem"), p("s2"), diffSnapshot); err != nil {
		t.Fatalf("Diff snapshot into the base: %v", err)
	}
	t.Logf("Diff merged into the base in %v", time.Since(start).Round(time.Millisecond))
	copyFile(t, p("mem"), p("mem2"))
	src.m.ResumeVM(ctx)
	// s3: a Diff to a new file, a layer over s2's memory.
	src.run("echo three > /root/m3")
	src.m.PauseVM(ctx)
	if err := src.m.CreateSnapshot(ctx, p("layer3"), p("s3"), diffSnapshot); err != nil {
		t.Fatalf("Diff snapshot to a layer: %v", err)
	}
	if a, full := allocated(t, p("layer3")), allocated(t, p("mem2")); a*4 > full {
		t.Errorf("the diff layer has %d bytes allocated, the full memory %d: not a diff", a, full)
	}
	// A Diff is only merged into the previous snapshot's memory file.
	err = src.m.CreateSnapshot(ctx, p("mem1"), p("s4"), diffSnapshot)
	if msg := faultOf(err); !strings.Contains(msg, "is not the memory file of this VM's previous snapshot") {
		t.Fatalf("Diff into an older memory file: %v", err)
	}
	src.kill()

	// Each snapshot loads through the SDK in a fresh process, resumed.
	copyFile(t, p("mem2"), p("merged3"))
	mergeLayer(t, p("layer3"), p("merged3"))
	for _, c := range []struct {
		state, mem, want string
	}{
		{"s2", "mem", "one two -"},
		{"s3", "merged3", "one two three"},
	} {
		start := time.Now()
		v := startSDK(t, firecracker.Config{SocketPath: p(c.state + ".sock")},
			firecracker.WithSnapshot(p(c.mem), p(c.state), resumeVM))
		got := v.run(`for f in m1 m2 m3; do if [ -e /root/$f ]; then read x < /root/$f; echo -n "$x "; else echo -n "- "; fi; done`)
		if strings.TrimSpace(got) != c.want {
			t.Errorf("%s restored from %s: files %q, want %q", c.state, c.mem, got, c.want)
		}
		t.Logf("%s: loaded and answered in %v", c.state, time.Since(start).Round(time.Millisecond))
		v.kill()
	}

	// A fresh process refuses damaged snapshots one by one, then loads a
	// good one, paused, and runs it on resume.
	api := testutil.StartGuest(t, "run", "--api-sock", p("api.sock"))
	client := waitAPI(t, p("api.sock"))
	damaged := func(name string, mutate func([]byte) []byte, from string) string {
		b, err := os.ReadFile(p(from))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p(name), mutate(b), 0o600)
		return p(name)
	}
	flip := func(i int) func([]byte) []byte {
		return func(b []byte) []byte { b[i%len(b)] ^= 0x55; return b }
	}
	corrupt := damaged("corrupt", flip(1000), "s2")
	version := damaged("version", flip(8), "s2")
	truncated := damaged("truncated", func(b []byte) []byte { return b[:1<<20] }, "mem2")
	for _, c := range []struct{ state, mem, want string }{
		{corrupt, p("mem2"), "checksum"},
		{version, p("mem2"), "version"},
		{p("s2"), truncated, "truncated"},
		{p("s1"), p("mem2"), "memory file does not belong to this snapshot"},
		{p("s3"), p("missing"), "no such file"},
	} {
		_, err := client.LoadSnapshot(ctx, &models.SnapshotLoadParams{SnapshotPath: &c.state, MemFilePath: &c.mem})
		msg := faultOf(err)
		if !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("load %s with %s: %q, want one line with %q", filepath.Base(c.state), filepath.Base(c.mem), msg, c.want)
		}
	}
	if _, err := client.LoadSnapshot(ctx, &models.SnapshotLoadParams{SnapshotPath: firecracker.String(p("s1")), MemFilePath: firecracker.String(p("mem1")), EnableDiffSnapshots: true}); err != nil {
		t.Fatalf("good load after failed ones: %v", err)
	}
	info, err := client.GetMachineConfiguration()
	if err != nil || *info.Payload.MemSizeMib != 128 || !info.Payload.TrackDirtyPages {
		t.Fatalf("machine config after load: %+v %v", info, err)
	}
	state := vmState(t, client)
	if state != models.InstanceInfoStatePaused {
		t.Fatalf("loaded without resume_vm: state %q, want Paused", state)
	}
	if _, err := client.PatchVM(ctx, &models.VM{State: firecracker.String(models.VMStateResumed)}); err != nil {
		t.Fatal(err)
	}
	if got := api.Run("cat /root/m1; ls /root", cmdTimeout); got != "one\nm1" {
		t.Errorf("s1 restored: %q", got)
	}

	// Killed while overwriting a snapshot: the files always load, holding
	// the old snapshot or the new one. Each round restores the pair it
	// then overwrites.
	copyFile(t, p("mem1"), p("kmem"))
	copyFile(t, p("s1"), p("kstate"))
	for i, delay := range []time.Duration{0, 5 * time.Millisecond, 30 * time.Millisecond, 80 * time.Millisecond} {
		v := testutil.StartGuest(t, "run", "--api-sock", p(fmt.Sprintf("k%d.sock", i)))
		c := waitAPI(t, p(fmt.Sprintf("k%d.sock", i)))
		if _, err := c.LoadSnapshot(ctx, &models.SnapshotLoadParams{SnapshotPath: firecracker.String(p("kstate")), MemFilePath: firecracker.String(p("kmem")), ResumeVM: true}); err != nil {
			t.Fatalf("round %d: the previous snapshot does not load: %s", i, faultOf(err))
		}
		if got := v.Run(fmt.Sprintf("echo round%d > /root/k; cat /root/m1", i), cmdTimeout); got != "one" {
			t.Fatalf("round %d: restored guest answers %q", i, got)
		}
		c.PatchVM(ctx, &models.VM{State: firecracker.String(models.VMStatePaused)})
		go c.CreateSnapshot(ctx, &models.SnapshotCreateParams{SnapshotPath: firecracker.String(p("kstate")), MemFilePath: firecracker.String(p("kmem"))})
		time.Sleep(delay)
		v.Process().Signal(syscall.SIGKILL)
		v.Wait(cmdTimeout)
	}
	v := testutil.StartGuest(t, "run", "--api-sock", p("last.sock"))
	c := waitAPI(t, p("last.sock"))
	if _, err := c.LoadSnapshot(ctx, &models.SnapshotLoadParams{SnapshotPath: firecracker.String(p("kstate")), MemFilePath: firecracker.String(p("kmem")), ResumeVM: true}); err != nil {
		t.Fatalf("after the last kill: %s", faultOf(err))
	}
	if got := v.Run("cat /root/m1", cmdTimeout); got != "one" {
		t.Fatalf("after the last kill the guest answers %q", got)
	}
	// The next snapshot sweeps what the killed writers left.
	leftovers, _ := filepath.Glob(p(".k*.tmp-*"))
	c.PatchVM(ctx, &models.VM{State: firecracker.String(models.VMStatePaused)})
	if _, err := c.CreateSnapshot(ctx, &models.SnapshotCreateParams{SnapshotPath: firecracker.String(p("kstate")), MemFilePath: firecracker.String(p("kmem"))}); err != nil {
		t.Fatalf("snapshot after the kills: %s", faultOf(err))
	}
	after, _ := filepath.Glob(p(".k*.tmp-*"))
	for _, f := range after {
		if !strings.HasSuffix(f, ".prev") {
			t.Errorf("temporary file %s left after a successful snapshot", filepath.Base(f))
		}
	}
	t.Logf("temporary files left by the kills: %d; after the next snapshot: %d", len(leftovers), len(after))
}

// waitAPI waits for an API socket and returns an SDK client for it.
func waitAPI(t *testing.T, sock string) *firecracker.Client {
	t.Helper()
	deadline := time.Now().Add(cmdTimeout)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no API socket %s", sock)
		}
		time.Sleep(10 * time.Millisecond)
	}
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	return firecracker.NewClient(sock, logrus.NewEntry(logger), false)
}

func vmState(t *testing.T, c *firecracker.Client) string {
	t.Helper()
	info, err := c.GetInstanceInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return *info.Payload.State
}
