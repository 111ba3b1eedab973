package fcapi

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/balloon"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

func TestInstanceInfo(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ID = "vm-7" })
	var info instanceInfo
	h.get("/", &info)
	want := instanceInfo{ID: "vm-7", State: "Not started", VMMVersion: "1.2.3", AppName: "vireo"}
	if info != want {
		t.Fatalf("GET / = %+v, want %+v", info, want)
	}
	h.boot()
	h.get("/", &info)
	if info.State != "Running" {
		t.Fatalf("state after start = %q", info.State)
	}
	h.ok("PATCH", "/vm", `{"state": "Paused"}`)
	h.get("/", &info)
	if info.State != "Paused" {
		t.Fatalf("state after pause = %q", info.State)
	}
	var v versionInfo
	h.get("/version", &v)
	if v.FirecrackerVersion != "1.2.3" {
		t.Fatalf("GET /version = %+v", v)
	}
}

func TestDefaultInstanceID(t *testing.T) {
	h := newHarness(t)
	var info instanceInfo
	h.get("/", &info)
	if info.ID != "anonymous-instance" {
		t.Fatalf("id = %q", info.ID)
	}
}

func TestMachineConfig(t *testing.T) {
	h := newHarness(t)
	var mc machineConfig
	h.get("/machine-config", &mc)
	if mc != (machineConfig{VCPUCount: 1, MemSizeMib: 128, HugePages: "None"}) {
		t.Fatalf("defaults = %+v", mc)
	}
	h.ok("PUT", "/machine-config", `{"vcpu_count": 2, "mem_size_mib": 256, "smt": true, "track_dirty_pages": true, "cpu_template": "baseline-v2", "huge_pages": "Transparent"}`)
	h.get("/machine-config", &mc)
	want := machineConfig{VCPUCount: 2, MemSizeMib: 256, SMT: true, CPUTemplate: "baseline-v2", TrackDirtyPages: true, HugePages: "Transparent"}
	if mc != want {
		t.Fatalf("after PUT = %+v, want %+v", mc, want)
	}
	// PATCH changes only what it names.
	h.ok("PATCH", "/machine-config", `{"mem_size_mib": 512}`)
	h.get("/machine-config", &mc)
	want.MemSizeMib = 512
	if mc != want {
		t.Fatalf("after PATCH = %+v, want %+v", mc, want)
	}
	// PUT resets what it leaves out but the template; "None" clears that.
	h.ok("PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 64}`)
	mc = machineConfig{}
	h.get("/machine-config", &mc)
	if mc != (machineConfig{VCPUCount: 1, MemSizeMib: 64, CPUTemplate: "baseline-v2", HugePages: "None"}) {
		t.Fatalf("after second PUT = %+v", mc)
	}
	h.ok("PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 64, "cpu_template": "None"}`)
	mc = machineConfig{}
	h.get("/machine-config", &mc)
	if mc != (machineConfig{VCPUCount: 1, MemSizeMib: 64, HugePages: "None"}) {
		t.Fatalf("after third PUT = %+v", mc)
	}
	raw := func() string { _, b := h.do("GET", "/machine-config", ""); return b }()
	if strings.Contains(raw, "cpu_template") {
		t.Fatalf("no template should be reported: %s", raw)
	}
}

func TestMachineConfigErrors(t *testing.T) {
	h := newHarness(t)
	const deser = "An error occurred when deserializing the json body of a request: "
	for _, c := range []struct{ method, body, want string }{
		{"PUT", `{"vcpu_count": 2, "mem_size_mib": 256`, deser + "unexpected end"},
		{"PUT", `{"vcpu_count": 2, "mem_size_mib": 256, "memory": 1}`, deser + "unknown field `memory`"},
		{"PUT", `{"VCPU_COUNT": 2, "mem_size_mib": 256}`, "unknown field `VCPU_COUNT`"},
		{"PUT", `{"vcpu_count": "2", "mem_size_mib": 256}`, "invalid type: string for field `vcpu_count`"},
		{"PUT", `{"vcpu_count": 2, "mem_size_mib": 256, "smt": 1}`, "for field `smt`, expected a boolean"},
		{"PUT", `{"vcpu_count": 2}`, "missing field `mem_size_mib`"},
		{"PUT", `{"mem_size_mib": 256}`, "missing field `vcpu_count`"},
		{"PUT", `{"vcpu_count": -1, "mem_size_mib": 256}`, "invalid value -1"},
		{"PUT", `{"vcpu_count": 1000, "mem_size_mib": 256}`, "invalid value 1000"},
		{"PUT", `{"vcpu_count": 0, "mem_size_mib": 256}`, "Machine config error: The number of vCPUs"},
		{"PUT", `{"vcpu_count": 3, "mem_size_mib": 256, "smt": true}`, "1 or an even number if SMT is enabled"},
		{"PUT", `{"vcpu_count": 255, "mem_size_mib": 256}`, "Machine config error: invalid configuration: 255 vCPUs"},
		{"PUT", `{"vcpu_count": 1, "mem_size_mib": 0}`, "The memory size (MiB) is either 0"},
		{"PUT", `{"vcpu_count": 1, "mem_size_mib": 8}`, "Machine config error: invalid configuration: 8 MiB"},
		{"PUT", `{"vcpu_count": 1, "mem_size_mib": 129}`, "multiple of 2 MiB"},
		{"PUT", `{"vcpu_count": 1, "mem_size_mib": 18446744073709551615}`, "The memory size (MiB)"},
		{"PUT", `{"vcpu_count": 1, "mem_size_mib": 128, "cpu_template": "C3"}`, "CPU template \"C3\""},
		{"PUT", `{"vcpu_count": 1, "mem_size_mib": 128, "huge_pages": "1G"}`, "unknown variant `1G`, expected one of `None`, `Transparent`, `2M`"},
		{"PATCH", `{}`, "Empty PATCH request."},
		{"PATCH", `{"vcpu_count": null}`, "Empty PATCH request."},
		{"PATCH", `{"cpus": 2}`, "unknown field `cpus`"},
	} {
		h.fault(c.method, "/machine-config", c.body, c.want)
	}
	var mc machineConfig
	h.get("/machine-config", &mc)
	if mc != (machineConfig{VCPUCount: 1, MemSizeMib: 128, HugePages: "None"}) {
		t.Fatalf("refused requests changed the configuration: %+v", mc)
	}
}

func TestMachineConfigSmallerThanBalloon(t *testing.T) {
	h := newHarness(t)
	h.ok("PUT", "/balloon", `{"amount_mib": 100, "deflate_on_oom": true}`)
	h.fault("PATCH", "/machine-config", `{"mem_size_mib": 64}`, "smaller than the previously set balloon device target size")
}

func TestBootSource(t *testing.T) {
	h := newHarness(t)
	h.ok("PUT", "/boot-source", `{"kernel_image_path": "`+h.kernel+`", "initrd_path": "`+h.initrd+`", "boot_args": "console=ttyS0 quiet"}`)
	var fc fullConfig
	h.get("/vm/config", &fc)
	if fc.BootSource.KernelImagePath != h.kernel || *fc.BootSource.InitrdPath != h.initrd || *fc.BootSource.BootArgs != "console=ttyS0 quiet" {
		t.Fatalf("boot-source = %+v", fc.BootSource)
	}
	missing := filepath.Join(h.dir, "missing")
	for _, c := range []struct{ body, want string }{
		{`{"kernel_image_path": "` + missing + `"}`, "Boot source error: The kernel file cannot be opened: " + missing + ": no such file or directory"},
		{`{"kernel_image_path": "` + h.dir + `"}`, "is a directory"},
		{`{"kernel_image_path": "/dev/null"}`, "is not a regular file"},
		{`{"kernel_image_path": "` + h.kernel + `", "initrd_path": "` + missing + `"}`, "The initrd file cannot be opened"},
		{`{"kernel_image_path": "` + h.kernel + `", "boot_args": "a\u0000b"}`, "The kernel command line is invalid: it contains a NUL byte"},
		{`{"kernel_image_path": "` + h.kernel + `", "boot_args": "` + strings.Repeat("x", 70000) + `"}`, "command line is invalid"},
		{`{"initrd_path": "` + h.initrd + `"}`, "missing field `kernel_image_path`"},
		{`{"kernel_image_path": 7}`, "invalid type: number 7 for field `kernel_image_path`"},
		{`{"kernel_image_path": "` + h.kernel + `", "kernel_args": ""}`, "unknown field `kernel_args`"},
	} {
		h.fault("PUT", "/boot-source", c.body, c.want)
	}
}

func TestBootSourceLargeBodyDirect(t *testing.T) {
	// Handle itself has no size limit; ServeHTTP enforces it (http_test.go).
	h := newHarness(t)
	h.fault("PUT", "/boot-source", `{"kernel_image_path": "`+strings.Repeat("a", 100000)+`"}`, "Boot source error")
}

func TestDrives(t *testing.T) {
	h := newHarness(t)
	root := h.file("root.img", "disk")
	data := h.file("data.img", "disk")
	ro := h.file("ro.img", "disk")
	if err := os.Chmod(ro, 0o444); err != nil {
		t.Fatal(err)
	}
	h.ok("PUT", "/drives/data", `{"drive_id": "data", "path_on_host": "`+data+`", "is_root_device": false, "is_read_only": false,
		"rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}, "ops": {"size": 10, "one_time_burst": 5, "refill_time": 1}}}`)
	h.ok("PUT", "/drives/rootfs", `{"drive_id": "rootfs", "path_on_host": "`+root+`", "is_root_device": true, "is_read_only": false, "cache_type": "Writeback", "io_engine": "Async", "partuuid": "abc"}`)
	h.ok("PUT", "/drives/ro_1", `{"drive_id": "ro_1", "path_on_host": "`+ro+`", "is_root_device": false, "is_read_only": true}`)
	// Replacing a drive keeps one entry; the root may be re-put as root.
	h.ok("PUT", "/drives/rootfs", `{"drive_id": "rootfs", "path_on_host": "`+root+`", "is_root_device": true}`)

	var fc fullConfig
	h.get("/vm/config", &fc)
	var ids []string
	for _, d := range fc.Drives {
		ids = append(ids, d.DriveID)
	}
	if strings.Join(ids, ",") != "rootfs,data,ro_1" {
		t.Fatalf("drive order = %v, want the root first", ids)
	}
	r := fc.Drives[0]
	if !r.IsRootDevice || *r.IsReadOnly || *r.CacheType != "Unsafe" || *r.IOEngine != "Sync" || r.Partuuid != nil {
		t.Fatalf("root drive not normalized: %+v", r)
	}
	if d := fc.Drives[1]; d.RateLimiter == nil || d.RateLimiter.Ops.Size != 10 || *d.RateLimiter.Ops.OneTimeBurst != 5 {
		t.Fatalf("rate limiter lost: %+v", d.RateLimiter)
	}

	missing := filepath.Join(h.dir, "nope.img")
	for _, c := range []struct{ path, body, want string }{
		{"/drives/other", `{"drive_id": "other", "path_on_host": "` + data + `", "is_root_device": true}`, "Drive config error: A root block device already exists!"},
		{"/drives/x", `{"drive_id": "y", "path_on_host": "` + data + `", "is_root_device": false}`, "The id from the path does not match the id from the body!"},
		{"/drives/x-y", `{"drive_id": "x-y", "path_on_host": "` + data + `", "is_root_device": false}`, msgInvalidID},
		{"/drives/", `{"drive_id": "", "path_on_host": "` + data + `", "is_root_device": false}`, msgEmptyID},
		{"/drives//x", `{"drive_id": "x", "path_on_host": "` + data + `", "is_root_device": false}`, "Invalid request method and/or path: PUT /drives//x."},
		{"/drives/x", `{"drive_id": "x", "path_on_host": "` + missing + `", "is_root_device": false}`, "Unable to create the block device: " + missing + ": no such file or directory"},
		{"/drives/x", `{"drive_id": "x", "path_on_host": "` + h.dir + `", "is_root_device": false}`, "is a directory"},
		{"/drives/x", `{"drive_id": "x", "path_on_host": "/dev/null", "is_root_device": false}`, "neither a regular file nor a block device"},
		{"/drives/x", `{"drive_id": "x", "path_on_host": "` + data + `"}`, "missing field `is_root_device`"},
		{"/drives/x", `{"drive_id": "x", "is_root_device": false}`, "missing field `path_on_host`"},
		{"/drives/x", `{"drive_id": "x", "path_on_host": "` + data + `", "is_root_device": "no"}`, "expected a boolean"},
		{"/drives/x", `{"drive_id": "x", "path_on_host": "` + data + `", "is_root_device": false, "cache_type": "None"}`, "unknown variant `None`"},
		{"/drives/x", `{"drive_id": "x", "path_on_host": "` + data + `", "is_root_device": false, "io_engine": "Uring"}`, "unknown variant `Uring`"},
		{"/drives/x", `{"drive_id": "x", "path_on_host": "` + data + `", "is_root_device": false, "rate_limiter": {"bandwidth": {"size": 1}}}`, "missing field `refill_time` in `rate_limiter.bandwidth`"},
		{"/drives/x/y", `{"drive_id": "x", "path_on_host": "` + data + `", "is_root_device": false}`, "Invalid request method and/or path: PUT /drives/x/y."},
	} {
		h.fault("PUT", c.path, c.body, c.want)
	}
	if os.Geteuid() != 0 {
		h.fault("PUT", "/drives/x", `{"drive_id": "x", "path_on_host": "`+ro+`", "is_root_device": false, "is_read_only": false}`, "permission denied")
	}
	h.fault("PATCH", "/drives/data", `{"drive_id": "data", "path_on_host": "`+data+`"}`, msgNotSupportedPreBoot)
}

func TestNetworkInterfaces(t *testing.T) {
	h := newHarness(t)
	h.ok("PUT", "/network-interfaces/eth0", `{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "AA:FC:00:00:00:01",
		"rx_rate_limiter": {"ops": {"size": 1, "refill_time": 1}}}`)
	h.ok("PUT", "/network-interfaces/eth1", `{"iface_id": "eth1", "host_dev_name": "tap1"}`)
	// The same interface may be replaced with its own MAC and tap.
	h.ok("PUT", "/network-interfaces/eth0", `{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "aa:fc:00:00:00:01"}`)
	var fc fullConfig
	h.get("/vm/config", &fc)
	if len(fc.NetworkInterfaces) != 2 || fc.NetworkInterfaces[0].IfaceID != "eth0" || *fc.NetworkInterfaces[0].GuestMAC != "aa:fc:00:00:00:01" {
		t.Fatalf("interfaces = %+v", fc.NetworkInterfaces)
	}
	for _, c := range []struct{ path, body, want string }{
		{"/network-interfaces/eth2", `{"iface_id": "eth2", "host_dev_name": "tap2", "guest_mac": "aa:fc:00:00:00:01"}`, "The MAC address is already in use: aa:fc:00:00:00:01"},
		{"/network-interfaces/eth2", `{"iface_id": "eth2", "host_dev_name": "tap1"}`, "tap1 is already used by interface eth1"},
		{"/network-interfaces/eth2", `{"iface_id": "eth2", "host_dev_name": "tap2", "guest_mac": "aa:fc:00:00:00"}`, "invalid MAC address"},
		{"/network-interfaces/eth2", `{"iface_id": "eth2", "host_dev_name": "tap2", "guest_mac": "aafc.0000.0001"}`, "invalid MAC address"},
		{"/network-interfaces/eth2", `{"iface_id": "eth2", "host_dev_name": "a-name-far-too-long"}`, "Cannot open/create the tap device"},
		{"/network-interfaces/eth2", `{"iface_id": "eth2", "host_dev_name": ""}`, "Cannot open/create the tap device"},
		{"/network-interfaces/eth2", `{"iface_id": "eth3", "host_dev_name": "tap3"}`, "The id from the path [eth2] does not match the id from the body [eth3]!"},
		{"/network-interfaces/eth2", `{"iface_id": "eth2"}`, "missing field `host_dev_name`"},
		{"/network-interfaces/eth2", `{"iface_id": "eth2", "host_dev_name": "tap2", "allow_mmds_requests": true}`, "unknown field `allow_mmds_requests`"},
	} {
		h.fault("PUT", c.path, c.body, c.want)
	}
	h.fault("PATCH", "/network-interfaces/eth0", `{"iface_id": "eth0"}`, msgNotSupportedPreBoot)
}

func TestVsock(t *testing.T) {
	h := newHarness(t)
	uds := filepath.Join(h.dir, "v.sock")
	h.ok("PUT", "/vsock", `{"guest_cid": 3, "uds_path": "`+uds+`", "vsock_id": "old"}`)
	var fc fullConfig
	h.get("/vm/config", &fc)
	if fc.Vsock == nil || fc.Vsock.GuestCID != 3 || fc.Vsock.UDSPath != uds || fc.Vsock.VsockID != nil {
		t.Fatalf("vsock = %+v", fc.Vsock)
	}
	h.fault("PUT", "/vsock", `{"guest_cid": 2, "uds_path": "`+uds+`"}`, "guest CID 2 is reserved")
	h.fault("PUT", "/vsock", `{"guest_cid": 3, "uds_path": "/no/such/dir/v.sock"}`, "directory of /no/such/dir/v.sock does not exist")
	h.fault("PUT", "/vsock", `{"guest_cid": 3, "uds_path": ""}`, "uds_path is empty")
	h.fault("PUT", "/vsock", `{"guest_cid": 4294967296, "uds_path": "`+uds+`"}`, "expected an integer from 0 to 4294967295")
	h.fault("PUT", "/vsock", `{"uds_path": "`+uds+`"}`, "missing field `guest_cid`")
}

func TestBalloon(t *testing.T) {
	h := newHarness(t)
	h.fault("GET", "/balloon", "", "Balloon config error: No balloon device found.")
	h.fault("PUT", "/balloon", `{"amount_mib": 129, "deflate_on_oom": false}`, "Amount of pages requested is too large.")
	h.fault("PUT", "/balloon", `{"amount_mib": 1}`, "missing field `deflate_on_oom`")
	h.fault("PUT", "/balloon", `{"amount_mib": 1, "deflate_on_oom": true, "stats_polling_interval_s": 70000}`, "expected an integer from 0 to 65535")
	h.ok("PUT", "/balloon", `{"amount_mib": 64, "deflate_on_oom": true, "stats_polling_interval_s": 5}`)
	var b balloonConfig
	h.get("/balloon", &b)
	if b != (balloonConfig{AmountMib: 64, DeflateOnOOM: true, StatsPollingIntervalS: 5}) {
		t.Fatalf("GET /balloon = %+v", b)
	}
	h.fault("PATCH", "/balloon", `{"amount_mib": 10}`, msgNotSupportedPreBoot)
	h.fault("PATCH", "/balloon/statistics", `{"stats_polling_interval_s": 1}`, msgNotSupportedPreBoot)
	h.fault("GET", "/balloon/statistics", "", msgNotSupportedPreBoot)

	h.boot()
	if got := h.started[0].Balloon; got == nil || *got != (vmm.BalloonConfig{DeflateOnOOM: true, StatsInterval: 5 * time.Second, TargetPages: 64 << 8}) {
		t.Fatalf("the VM got balloon %+v", got)
	}
	// Statistics: the sizes always, the guest's values when it sent them.
	h.vm.mu.Lock()
	h.vm.balloon = vmm.BalloonInfo{MemoryBytes: 128 << 20, TargetPages: 64 << 8, ActualPages: 1000}
	h.vm.balloon.Stats.Values[balloon.TagFreeMemory] = 5 << 20
	h.vm.balloon.Stats.Present = 1 << balloon.TagFreeMemory
	h.vm.mu.Unlock()
	var st map[string]uint64
	h.get("/balloon/statistics", &st)
	want := map[string]uint64{"target_pages": 16384, "actual_pages": 1000, "target_mib": 64, "actual_mib": 3, "free_memory": 5 << 20}
	if !maps.Equal(st, want) {
		t.Errorf("GET /balloon/statistics = %v, want %v", st, want)
	}
	h.vm.mu.Lock()
	h.vm.failNext = vmm.ErrNoBalloon
	h.vm.mu.Unlock()
	h.fault("GET", "/balloon/statistics", "", "Balloon config error: no balloon device")

	h.ok("PATCH", "/balloon", `{"amount_mib": 10}`)
	h.get("/balloon", &b)
	if b.AmountMib != 10 {
		t.Fatalf("PATCH /balloon not stored: %+v", b)
	}
	h.fault("PATCH", "/balloon", `{"amount_mib": 1000}`, msgBalloonTooLarge)
	h.fault("PATCH", "/balloon", `{"amount_mib": 1, "deflate_on_oom": true}`, "unknown field `deflate_on_oom`")
	h.vm.mu.Lock()
	h.vm.failNext = errors.New("device refused")
	h.vm.mu.Unlock()
	h.fault("PATCH", "/balloon", `{"amount_mib": 20}`, "Balloon config error: device refused")
	h.get("/balloon", &b)
	if b.AmountMib != 10 {
		t.Fatalf("a refused PATCH /balloon was stored: %+v", b)
	}
	h.ok("PATCH", "/balloon/statistics", `{"stats_polling_interval_s": 9}`)
	h.ok("PATCH", "/balloon/statistics", `{"stats_polling_interval_s": 9}`)
	h.fault("PATCH", "/balloon/statistics", `{"stats_polling_interval_s": 0}`, msgStatsToggle)
	h.fault("PUT", "/balloon", `{"amount_mib": 1, "deflate_on_oom": true}`, msgNotSupportedPostBoot)
	h.vm.mu.Lock()
	defer h.vm.mu.Unlock()
	if !slices.Equal(h.vm.sizes, []uint64{10 << 20}) || !slices.Equal(h.vm.intervals, []time.Duration{9 * time.Second}) {
		t.Errorf("the VM saw sizes %v and intervals %v", h.vm.sizes, h.vm.intervals)
	}
}

func TestBalloonStatisticsWithoutBalloon(t *testing.T) {
	h := newHarness(t)
	h.boot()
	h.fault("GET", "/balloon/statistics", "", "Balloon config error: No balloon device found.")
	h.fault("PATCH", "/balloon", `{"amount_mib": 1}`, "No balloon device found.")
	h.fault("PATCH", "/balloon/statistics", `{"stats_polling_interval_s": 1}`, "No balloon device found.")
}

func TestBalloonStatisticsDisabled(t *testing.T) {
	h := newHarness(t)
	h.ok("PUT", "/balloon", `{"amount_mib": 1, "deflate_on_oom": false}`)
	h.boot()
	h.fault("GET", "/balloon/statistics", "", "Balloon config error: Statistics for the balloon device are not enabled")
}

func TestInstanceStart(t *testing.T) {
	h := newHarness(t)
	h.fault("PUT", "/actions", `{"action_type": "InstanceStart"}`, "Start microvm error: Cannot start microvm without kernel configuration.")
	h.ok("PUT", "/machine-config", `{"vcpu_count": 2, "mem_size_mib": 256, "huge_pages": "2M", "cpu_template": "pvm-host"}`)
	h.ok("PUT", "/boot-source", `{"kernel_image_path": "`+h.kernel+`", "initrd_path": "`+h.initrd+`"}`)
	h.startErr = errFake
	h.fault("PUT", "/actions", `{"action_type": "InstanceStart"}`, "Start microvm error: fake failure")
	var info instanceInfo
	h.get("/", &info)
	if info.State != "Not started" {
		t.Fatalf("a failed start left state %q", info.State)
	}
	h.startErr = nil
	h.ok("PUT", "/actions", `{"action_type": "InstanceStart"}`)
	cfg := h.lastStart()
	want := vmm.Config{
		Kernel: h.kernel, Initrd: h.initrd, Cmdline: "console=ttyS0 default",
		CPUs: 2, MemoryBytes: 256 << 20, HugePages: "hugetlbfs", CPUTemplate: "pvm-host", NoReboot: true,
	}
	if cfg.Kernel != want.Kernel || cfg.Initrd != want.Initrd || cfg.Cmdline != want.Cmdline || cfg.CPUs != want.CPUs ||
		cfg.MemoryBytes != want.MemoryBytes || cfg.HugePages != want.HugePages || cfg.CPUTemplate != want.CPUTemplate || !cfg.NoReboot {
		t.Fatalf("vmm.Config = %+v, want %+v", cfg, want)
	}
	h.fault("PUT", "/actions", `{"action_type": "InstanceStart"}`, msgNotSupportedPostBoot)
	if err := h.s.StartInstance(); err == nil || !strings.Contains(err.Error(), msgNotSupportedPostBoot) {
		t.Fatalf("StartInstance after start: %v", err)
	}
}

func TestInstanceStartBootArgs(t *testing.T) {
	h := newHarness(t)
	h.ok("PUT", "/boot-source", `{"kernel_image_path": "`+h.kernel+`", "boot_args": ""}`)
	h.ok("PUT", "/actions", `{"action_type": "InstanceStart"}`)
	if c := h.lastStart().Cmdline; c != "" {
		t.Fatalf("explicit empty boot_args became %q", c)
	}
}

// Drives, network interfaces and vsock configured through the API reach
// the VM's configuration at InstanceStart, and a root drive sets root= on
// the kernel command line as in Firecracker.
func TestInstanceStartAttachesDevices(t *testing.T) {
	h := newHarness(t)
	disk := h.file("disk.img", "x")
	h.ok("PUT", "/drives/rootfs", `{"drive_id": "rootfs", "path_on_host": "`+disk+`", "is_root_device": true, "is_read_only": true}`)
	h.ok("PUT", "/network-interfaces/eth0", `{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "02:00:00:00:00:01"}`)
	h.ok("PUT", "/vsock", `{"guest_cid": 3, "uds_path": "`+h.dir+`/v.sock"}`)
	h.ok("PUT", "/boot-source", `{"kernel_image_path": "`+h.kernel+`", "boot_args": "console=ttyS0"}`)
	h.ok("PUT", "/actions", `{"action_type": "InstanceStart"}`)
	cfg := h.lastStart()
	if len(cfg.Disks) != 1 || cfg.Disks[0].Path != disk || !cfg.Disks[0].ReadOnly || cfg.Disks[0].ID != "rootfs" {
		t.Errorf("disks %+v", cfg.Disks)
	}
	if len(cfg.Nets) != 1 || cfg.Nets[0].Tap != "tap0" {
		t.Errorf("nets %+v", cfg.Nets)
	}
	if cfg.Vsock == nil || cfg.Vsock.CID != 3 {
		t.Errorf("vsock %+v", cfg.Vsock)
	}
	if !strings.HasSuffix(cfg.Cmdline, "root=/dev/vda ro") {
		t.Errorf("cmdline %q lacks the root device", cfg.Cmdline)
	}
}

// A drive with a rate limiter fails InstanceStart: Vireo has none.
func TestInstanceStartRefusesRateLimiters(t *testing.T) {
	h := newHarness(t)
	disk := h.file("disk.img", "x")
	h.ok("PUT", "/drives/rootfs", `{"drive_id": "rootfs", "path_on_host": "`+disk+`", "is_root_device": true, "is_read_only": false, "rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}}}`)
	h.ok("PUT", "/boot-source", `{"kernel_image_path": "`+h.kernel+`"}`)
	h.fault("PUT", "/actions", `{"action_type": "InstanceStart"}`, `Start microvm error: drive "rootfs": virtio-blk: rate limiters are not supported`)
}

func TestPreAndPostBootRules(t *testing.T) {
	h := newHarness(t)
	for _, a := range []string{"SendCtrlAltDel", "FlushMetrics"} {
		h.fault("PUT", "/actions", `{"action_type": "`+a+`"}`, msgNotSupportedPreBoot)
	}
	h.fault("PATCH", "/vm", `{"state": "Paused"}`, msgNotSupportedPreBoot)
	h.fault("PATCH", "/vm", `{"state": "Resumed"}`, msgNotSupportedPreBoot)
	h.boot()
	disk := h.file("disk.img", "x")
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 128}`},
		{"PATCH", "/machine-config", `{"vcpu_count": 1}`},
		{"PUT", "/boot-source", `{"kernel_image_path": "` + h.kernel + `"}`},
		{"PUT", "/drives/rootfs", `{"drive_id": "rootfs", "path_on_host": "` + disk + `", "is_root_device": true}`},
		{"PUT", "/network-interfaces/eth0", `{"iface_id": "eth0", "host_dev_name": "tap0"}`},
		{"PUT", "/vsock", `{"guest_cid": 3, "uds_path": "` + h.dir + `/v.sock"}`},
		{"PUT", "/logger", `{"log_path": "` + h.dir + `/log"}`},
		{"PUT", "/metrics", `{"metrics_path": "` + h.dir + `/metrics"}`},
	} {
		h.fault(c.method, c.path, c.body, msgNotSupportedPostBoot)
	}
	// Still validated first: a malformed body is a parse error, not a state error.
	h.fault("PUT", "/drives/rootfs", `{"drive_id": "rootfs"`, "deserializing")
	h.fault("PATCH", "/drives/rootfs", `{"drive_id": "rootfs", "path_on_host": "`+disk+`"}`, `Unable to patch the block device: no drive "rootfs" is attached.`)
	h.fault("PATCH", "/network-interfaces/eth0", `{"iface_id": "eth0"}`, `no network interface "eth0" is attached`)
}

func TestPauseResumeAndCtrlAltDel(t *testing.T) {
	h := newHarness(t)
	h.boot()
	h.ok("PATCH", "/vm", `{"state": "Paused"}`)
	h.ok("PATCH", "/vm", `{"state": "Paused"}`) // already paused: accepted, nothing to do
	h.ok("PATCH", "/vm", `{"state": "Resumed"}`)
	h.ok("PATCH", "/vm", `{"state": "Resumed"}`)
	if h.vm.pauses != 1 || h.vm.resumes != 1 {
		t.Fatalf("pauses %d resumes %d, want 1 and 1", h.vm.pauses, h.vm.resumes)
	}
	h.fault("PATCH", "/vm", `{"state": "Stopped"}`, "unknown variant `Stopped`, expected one of `Paused`, `Resumed`")
	h.fault("PATCH", "/vm", `{"state": "paused"}`, "unknown variant `paused`")
	h.fault("PATCH", "/vm", `{}`, "missing field `state`")
	h.vm.failNext = errFake
	h.fault("PATCH", "/vm", `{"state": "Paused"}`, "Internal Vmm error: fake failure")

	h.ok("PUT", "/actions", `{"action_type": "SendCtrlAltDel"}`)
	if h.vm.cad != 1 {
		t.Fatalf("Ctrl+Alt+Del sent %d times", h.vm.cad)
	}
	h.vm.failNext = errFake
	h.fault("PUT", "/actions", `{"action_type": "SendCtrlAltDel"}`, "Internal Vmm error: fake failure")
	h.fault("PUT", "/actions", `{"action_type": "Reboot"}`, "unknown variant `Reboot`")
	h.fault("PUT", "/actions", `{"action_type": "InstanceStart", "payload": {}}`, "unknown field `payload`")
	h.ok("PUT", "/actions", `{"action_type": "FlushMetrics"}`) // no destination: a no-op, as in Firecracker
}

func TestFullConfigShape(t *testing.T) {
	h := newHarness(t)
	_, body := h.do("GET", "/vm/config", "")
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"balloon", "drives", "boot-source", "logger", "machine-config", "metrics", "mmds-config", "network-interfaces", "vsock"} {
		if _, ok := m[k]; !ok {
			t.Errorf("GET /vm/config lacks %q: %s", k, body)
		}
	}
	for k, want := range map[string]string{"drives": "[]", "network-interfaces": "[]", "balloon": "null", "vsock": "null",
		"boot-source": `{"kernel_image_path":"","initrd_path":null,"boot_args":null}`} {
		if got := string(m[k]); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
}

func TestStatusCodes(t *testing.T) {
	h := newHarness(t)
	if st, body := h.do("GET", "/", ""); st != http.StatusOK || !json.Valid([]byte(body)) {
		t.Fatalf("GET / = %d %q", st, body)
	}
	if st, body := h.do("PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 128}`); st != http.StatusNoContent || body != "" {
		t.Fatalf("PUT = %d %q", st, body)
	}
}
