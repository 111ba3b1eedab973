package fcapi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	h := newHarness(t)
	logPath := filepath.Join(h.dir, "fc.log")
	metricsPath := filepath.Join(h.dir, "fc.metrics")
	cfg := `{
		"boot-source": {"kernel_image_path": "` + h.kernel + `", "initrd_path": "` + h.initrd + `", "boot_args": "console=ttyS0"},
		"drives": [],
		"machine-config": {"vcpu_count": 2, "mem_size_mib": 64},
		"network-interfaces": [],
		"logger": {"log_path": "` + logPath + `", "level": "debug"},
		"metrics": {"metrics_path": "` + metricsPath + `"},
		"balloon": null,
		"vsock": null,
		"mmds-config": null
	}`
	if err := h.s.LoadConfig([]byte(cfg)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{logPath, metricsPath} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("config file did not open %s: %v", p, err)
		}
	}
	var info instanceInfo
	h.get("/", &info)
	if info.State != "Not started" {
		t.Fatalf("LoadConfig started the VM: %q", info.State)
	}
	if err := h.s.StartInstance(); err != nil {
		t.Fatal(err)
	}
	c := h.lastStart()
	if c.Kernel != h.kernel || c.Initrd != h.initrd || c.Cmdline != "console=ttyS0" || c.CPUs != 2 || c.MemoryBytes != 64<<20 {
		t.Fatalf("started with %+v", c)
	}
	var fc fullConfig
	h.get("/vm/config", &fc)
	if fc.Logger == nil || fc.Logger.Level != "debug" || fc.Metrics == nil || fc.Metrics.MetricsPath != metricsPath {
		t.Fatalf("GET /vm/config after LoadConfig: %+v", fc)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	h := newHarness(t)
	boot := `"boot-source": {"kernel_image_path": "` + h.kernel + `"}`
	disk := h.file("disk.img", "x")
	for _, c := range []struct{ cfg, want string }{
		{`{`, "unexpected end"},
		{`[]`, "expected an object"},
		{`{}`, "missing field `boot-source`"},
		{`{` + boot + `, "boot_source": {}}`, "unknown field `boot_source`"},
		{`{` + boot + `, "mmds-config": {"network_interfaces": ["eth0"]}}`, `section "mmds-config" is not supported`},
		{`{` + boot + `, "cpu-config": {}}`, `section "cpu-config" is not supported`},
		{`{` + boot + `, "machine-config": {"vcpu_count": 0, "mem_size_mib": 64}}`, "Machine config error"},
		{`{"boot-source": {"kernel_image_path": "/nonexistent"}}`, "Boot source error"},
		{`{` + boot + `, "drives": [{"drive_id": "a-b", "path_on_host": "` + disk + `", "is_root_device": true}]}`, `drive "a-b": ` + msgInvalidID},
		{`{` + boot + `, "drives": [{"drive_id": "a", "path_on_host": "` + disk + `", "is_root_device": true},
			{"drive_id": "b", "path_on_host": "` + disk + `", "is_root_device": true}]}`, msgRootExists},
		{`{` + boot + `, "network-interfaces": [{"iface_id": "", "host_dev_name": "tap0"}]}`, msgEmptyID},
		{`{` + boot + `, "balloon": {"amount_mib": 1000, "deflate_on_oom": true}}`, msgBalloonTooLarge},
		{`{` + boot + `, "logger": {"level": "loud", "log_path": "x"}}`, "unknown variant `loud`"},
	} {
		err := h.s.LoadConfig([]byte(c.cfg))
		if !errors.Is(err, ErrConfigFile) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadConfig(%s) = %v, want ErrConfigFile containing %q", c.cfg, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error is not one line: %q", err)
		}
	}
}

func TestLoadConfigStartErrors(t *testing.T) {
	h := newHarness(t)
	disk := h.file("disk.img", "x")
	err := h.s.LoadConfig([]byte(`{"boot-source": {"kernel_image_path": "` + h.kernel + `"},
		"drives": [{"drive_id": "rootfs", "path_on_host": "` + disk + `", "is_root_device": true, "is_read_only": false,
		"rate_limiter": {"ops": {"size": 10, "refill_time": 1000}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	err = h.s.StartInstance()
	if !errors.Is(err, ErrStart) || !strings.Contains(err.Error(), `drive "rootfs": virtio-blk: rate limiters are not supported`) {
		t.Fatalf("StartInstance = %v", err)
	}
	if strings.Contains(err.Error(), "Start microvm error") {
		t.Errorf("the CLI error repeats the prefix: %v", err)
	}
}
