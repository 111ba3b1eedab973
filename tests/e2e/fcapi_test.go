package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

// consoleBuffer collects a VM's console output and waits for patterns.
type consoleBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	seen   int
	change chan struct{}
}

func newConsoleBuffer() *consoleBuffer { return &consoleBuffer{change: make(chan struct{}, 1)} }

func (c *consoleBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf.Write(p)
	c.mu.Unlock()
	select {
	case c.change <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *consoleBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// expect waits until re matches the output after the previous match.
func (c *consoleBuffer) expect(t *testing.T, re string, timeout time.Duration) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		if loc := rx.FindStringIndex(c.buf.String()[c.seen:]); loc != nil {
			c.seen += loc[1]
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		select {
		case <-c.change:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for the console to match %q", timeout, re)
		}
	}
}

// shortTempDir returns a directory whose paths fit in a Unix socket
// address (108 bytes), which t.TempDir's may not.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestFirecrackerSDK drives `vireo run --api-sock` with firecracker-go-sdk
// as a Firecracker user would: the SDK configures logger, metrics,
// machine and boot source, starts the instance, pauses and resumes it,
// and stops the VMM.
func TestFirecrackerSDK(t *testing.T) {
	t.Parallel()
	kernel := requireGuest(t, "vmlinux")
	initrd := testutil.DefaultInitrd(t)
	bin := testutil.VireoBinary(t)
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "api.sock")
	logPath := filepath.Join(dir, "vireo.log")
	metricsPath := filepath.Join(dir, "metrics.json")

	// The SDK waits 3 s for the socket by default; this host is shared.
	os.Setenv("FIRECRACKER_GO_SDK_INIT_TIMEOUT_SECONDS", "60")

	con := newConsoleBuffer()
	var stderr bytes.Buffer
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	cmd := exec.Command(bin, "run", "--api-sock", sock, "--id", "sdk_vm", "--log-level", "info")
	cmd.Stdout, cmd.Stderr, cmd.Stdin = con, &stderr, stdinR

	logger := logrus.New()
	logger.SetOutput(io.Discard)
	entry := logrus.NewEntry(logger)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := firecracker.NewMachine(ctx, firecracker.Config{
		SocketPath:      sock,
		KernelImagePath: kernel,
		InitrdPath:      initrd,
		KernelArgs:      testutil.DefaultCmdline(t),
		LogPath:         logPath,
		LogLevel:        "Info",
		MetricsPath:     metricsPath,
		VMID:            "sdk_vm",
		MachineCfg: models.MachineConfiguration{
			VcpuCount:  firecracker.Int64(1),
			MemSizeMib: firecracker.Int64(128),
		},
	}, firecracker.WithProcessRunner(cmd), firecracker.WithLogger(entry))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil && cmd.Process != nil {
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("console:\n%s\nstderr:\n%s", con.String(), stderr.String())
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("vireo log:\n%s", b)
			}
		}
	})
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	stdinR.Close() // the child has its own copy
	con.expect(t, "VIREO-BOOT-OK", bootTimeout)
	con.expect(t, prompt, cmdTimeout)

	info, err := m.DescribeInstanceInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if *info.State != models.InstanceInfoStateRunning || *info.ID != "sdk_vm" {
		t.Fatalf("instance info = state %q id %q", *info.State, *info.ID)
	}

	// Paused, the guest does not answer its console; resumed, it does.
	if err := m.PauseVM(ctx); err != nil {
		t.Fatalf("PauseVM: %v", err)
	}
	if info, err = m.DescribeInstanceInfo(ctx); err != nil || *info.State != models.InstanceInfoStatePaused {
		t.Fatalf("after PauseVM: %v %v", info.State, err)
	}
	fmt.Fprintf(stdinW, "echo PAUSE-$((6*7))-CHECK\n")
	time.Sleep(3 * time.Second)
	if strings.Contains(con.String(), "PAUSE-42-CHECK") {
		t.Fatal("the paused guest answered its console")
	}
	if err := m.ResumeVM(ctx); err != nil {
		t.Fatalf("ResumeVM: %v", err)
	}
	con.expect(t, "PAUSE-42-CHECK", cmdTimeout)

	client := firecracker.NewClient(sock, entry, false)
	flush := models.InstanceActionInfoActionTypeFlushMetrics
	if _, err := client.CreateSyncAction(ctx, &models.InstanceActionInfo{ActionType: &flush}); err != nil {
		t.Fatalf("FlushMetrics: %v", err)
	}
	checkMetrics(t, metricsPath)

	// Configuration is refused once the VM runs, with Firecracker's message.
	_, err = client.PutGuestDriveByID(ctx, "data", &models.Drive{
		DriveID: firecracker.String("data"), PathOnHost: firecracker.String(kernel),
		IsRootDevice: firecracker.Bool(false), IsReadOnly: firecracker.Bool(true),
	})
	var bad *ops.PutGuestDriveByIDBadRequest
	if !errors.As(err, &bad) || !strings.Contains(bad.Payload.FaultMessage, "not supported after starting the microVM") {
		t.Fatalf("PUT /drives after start: %v", err)
	}
	_, err = client.DescribeBalloonStats(ctx)
	var noBalloon *ops.DescribeBalloonStatsBadRequest
	if !errors.As(err, &noBalloon) || !strings.Contains(noBalloon.Payload.FaultMessage, "No balloon device found.") {
		t.Fatalf("GET /balloon/statistics without a balloon: %v", err)
	}
	full, err := client.GetExportVMConfig()
	if err != nil {
		t.Fatal(err)
	}
	if *full.Payload.BootSource.KernelImagePath != kernel || *full.Payload.MachineConfig.MemSizeMib != 128 {
		t.Fatalf("GET /vm/config = %+v", full.Payload)
	}
	if b, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(b), "api request refused") {
		t.Fatalf("the log file lacks Vireo's log (%v): %s", err, b)
	}

	// The guest has no i8042 driver, so Ctrl+Alt+Del is accepted and
	// ignored; StopVMM (SIGTERM) then ends the process.
	if err := m.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown (SendCtrlAltDel): %v", err)
	}
	if err := m.StopVMM(); err != nil {
		t.Fatal(err)
	}
	waitCtx, waitCancel := context.WithTimeout(ctx, cmdTimeout)
	defer waitCancel()
	if err := m.Wait(waitCtx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("API socket left behind: %v", err)
	}
}

// checkMetrics asserts the metrics file holds Firecracker-shaped lines
// with vCPU exits and the SDK's requests counted.
func checkMetrics(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var exits, actions, lines float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Timestamp float64            `json:"utc_timestamp_ms"`
			Put       map[string]float64 `json:"put_api_requests"`
			VCPU      map[string]float64 `json:"vcpu"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		lines++
		exits += line.VCPU["exit_io"] + line.VCPU["exit_mmio"]
		actions += line.Put["actions_count"]
	}
	if lines == 0 || exits == 0 || actions < 2 {
		t.Fatalf("metrics: %v lines, %v I/O exits, %v actions", lines, exits, actions)
	}
}

// TestFirecrackerConfigFile boots from a Firecracker config file, checks
// the API that runs beside it, and ends the VM from inside: a guest
// reboot ends the process, as in Firecracker.
func TestFirecrackerConfigFile(t *testing.T) {
	t.Parallel()
	kernel := requireGuest(t, "vmlinux")
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "api.sock")
	cfgPath := filepath.Join(dir, "vm.json")
	cfg := map[string]any{
		"boot-source": map[string]any{
			"kernel_image_path": kernel,
			"initrd_path":       testutil.DefaultInitrd(t),
			"boot_args":         testutil.DefaultCmdline(t),
		},
		"drives":             []any{},
		"machine-config":     map[string]any{"vcpu_count": 2, "mem_size_mib": 192},
		"network-interfaces": []any{},
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	g := testutil.StartGuest(t, "run", "--config-file", cfgPath, "--api-sock", sock)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	if got := g.Run("nproc", cmdTimeout); got != "2" {
		t.Errorf("nproc = %q, want 2", got)
	}

	c := unixClient(sock)
	var info struct{ ID, State string }
	getJSON(t, c, "/", &info)
	if info.State != "Running" || info.ID != "anonymous-instance" {
		t.Errorf("GET / = %+v", info)
	}
	var full struct {
		Machine struct {
			VCPUs int `json:"vcpu_count"`
			Mem   int `json:"mem_size_mib"`
		} `json:"machine-config"`
	}
	getJSON(t, c, "/vm/config", &full)
	if full.Machine.VCPUs != 2 || full.Machine.Mem != 192 {
		t.Errorf("GET /vm/config machine = %+v", full.Machine)
	}
	c.CloseIdleConnections()

	g.Send("reboot -f\n")
	if code := g.Wait(cmdTimeout); code != 0 {
		t.Fatalf("exit code %d after the guest rebooted, want 0", code)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("API socket left behind: %v", err)
	}
}

// TestFirecrackerModeErrors covers the Firecracker mode's failures that
// need no VM: each is one line on stderr and a non-zero exit.
func TestFirecrackerModeErrors(t *testing.T) {
	dir := shortTempDir(t)
	notKernel := filepath.Join(dir, "notes.txt")
	os.WriteFile(notKernel, []byte("not a kernel\n"), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"boot-source": {"kernel_image_path": "`+notKernel+`"}, "machine-config": {"vcpu_count": 1}}`), 0o644)
	withDrive := filepath.Join(dir, "drive.json")
	os.WriteFile(withDrive, []byte(`{"boot-source": {"kernel_image_path": "`+notKernel+`"},
		"drives": [{"drive_id": "rootfs", "path_on_host": "`+notKernel+`", "is_root_device": true, "is_read_only": true}]}`), 0o644)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"missing config file", []string{"run", "--config-file", filepath.Join(dir, "none.json")}, "no such file"},
		{"invalid config file", []string{"run", "--config-file", bad}, "missing field `mem_size_mib`"},
		{"kernel flag with config file", []string{"run", "--config-file", bad, "--kernel", notKernel}, "--kernel cannot be combined"},
		{"cpus flag with API socket", []string{"run", "--api-sock", filepath.Join(dir, "s"), "--cpus", "2"}, "--cpus cannot be combined"},
		{"socket over a file", []string{"run", "--api-sock", notKernel}, "not a socket"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := testutil.RunVireo(t, 30*time.Second, c.args...)
			checkOneLineError(t, code, stderr, c.want)
		})
	}
}

// TestFirecrackerAPIWaits checks that --api-sock without a config waits
// to be configured, answers, and exits cleanly on SIGTERM.
func TestFirecrackerAPIWaits(t *testing.T) {
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "api.sock")
	cmd := exec.Command(testutil.VireoBinary(t), "run", "--api-sock", sock)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no API socket; stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := unixClient(sock)
	var mc struct {
		VCPUs int `json:"vcpu_count"`
		Mem   int `json:"mem_size_mib"`
	}
	getJSON(t, c, "/machine-config", &mc)
	if mc.VCPUs != 1 || mc.Mem != 128 {
		t.Errorf("default machine config = %+v", mc)
	}
	req, _ := http.NewRequest("PUT", "http://localhost/actions", strings.NewReader(`{"action_type": "InstanceStart"}`))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "Cannot start microvm without kernel configuration.") {
		t.Errorf("InstanceStart without a kernel = %d %s", resp.StatusCode, body)
	}
	c.CloseIdleConnections()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("vireo did not exit on SIGTERM")
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("API socket left behind: %v", err)
	}
}

func unixClient(sock string) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
}

func getJSON(t *testing.T, c *http.Client, path string, v any) {
	t.Helper()
	resp, err := c.Get("http://localhost" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}
