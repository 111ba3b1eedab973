package fcapi

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/vireo-vmm/vireo/internal/vmm"
)

// snapVM is a fake VM that saves snapshots.
type snapVM struct {
	*fakeVM
	mu    sync.Mutex
	saved []snapCall
	fail  error
}

type snapCall struct {
	files vmm.SnapshotFiles
	diff  bool
}

func (v *snapVM) SnapshotToFiles(files vmm.SnapshotFiles, diff bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.fail != nil {
		return v.fail
	}
	v.saved = append(v.saved, snapCall{files, diff})
	return nil
}

func (v *snapVM) Shape() (int, uint64) { return 2, 256 << 20 }

// snapHarness is a harness whose VM is a snapVM, paused once started
// when cfg.StartPaused says so.
func snapHarness(t *testing.T) (*harness, *snapVM) {
	t.Helper()
	var h *harness
	sv := &snapVM{}
	h = newHarness(t, func(o *Options) {
		o.Start = func(cfg vmm.Config) (Instance, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.startErr != nil {
				return nil, h.startErr
			}
			h.started = append(h.started, cfg)
			if cfg.StartPaused {
				h.vm.mu.Lock()
				h.vm.state = vmm.StatePaused
				h.vm.mu.Unlock()
			}
			return sv, nil
		}
	})
	sv.fakeVM = h.vm
	return h, sv
}

func TestSnapshotCreate(t *testing.T) {
	h, sv := snapHarness(t)
	body := `{"snapshot_type": "Full", "snapshot_path": "/s/state", "mem_file_path": "/s/mem"}`
	h.fault("PUT", "/snapshot/create", body, msgNotSupportedPreBoot)
	h.boot()
	h.fault("PUT", "/snapshot/create", body, msgSaveRunning)
	h.ok("PATCH", "/vm", `{"state": "Paused"}`)
	h.ok("PUT", "/snapshot/create", body)
	// snapshot_type defaults to Full; firecracker-go-sdk v1.0.0 may send "version".
	h.ok("PUT", "/snapshot/create", `{"snapshot_path": "a", "mem_file_path": "b", "version": "1.0.0"}`)
	h.fault("PUT", "/snapshot/create", `{"snapshot_type": "Diff", "snapshot_path": "a", "mem_file_path": "b"}`, msgDiffUntracked)
	h.fault("PUT", "/snapshot/create", `{"snapshot_type": "Half", "snapshot_path": "a", "mem_file_path": "b"}`, "unknown variant `Half`, expected one of `Diff`, `Full`")
	h.fault("PUT", "/snapshot/create", `{"snapshot_path": "a"}`, "missing field `mem_file_path`")
	h.fault("PUT", "/snapshot/create", `{"snapshot_path": "a", "mem_file_path": "b", "extra": 1}`, "unknown field `extra`")
	sv.fail = errFake
	h.fault("PUT", "/snapshot/create", body, "Create snapshot error: fake failure")
	want := []snapCall{
		{vmm.SnapshotFiles{State: "/s/state", Memory: "/s/mem"}, false},
		{vmm.SnapshotFiles{State: "a", Memory: "b"}, false},
	}
	if len(sv.saved) != len(want) || sv.saved[0] != want[0] || sv.saved[1] != want[1] {
		t.Fatalf("snapshots %+v, want %+v", sv.saved, want)
	}
}

func TestSnapshotCreateDiff(t *testing.T) {
	h, sv := snapHarness(t)
	h.ok("PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 128, "track_dirty_pages": true}`)
	h.boot()
	h.ok("PATCH", "/vm", `{"state": "Paused"}`)
	h.ok("PUT", "/snapshot/create", `{"snapshot_type": "Diff", "snapshot_path": "s", "mem_file_path": "m"}`)
	if len(sv.saved) != 1 || !sv.saved[0].diff {
		t.Fatalf("snapshots %+v", sv.saved)
	}
}

func TestSnapshotLoad(t *testing.T) {
	h, _ := snapHarness(t)
	state := h.file("state", "s")
	mem := h.file("mem", "m")
	h.ok("PUT", "/logger", `{"log_path": "`+filepath.Join(h.dir, "log")+`"}`) // allowed before a load
	h.ok("PUT", "/snapshot/load", `{"snapshot_path": "`+state+`", "mem_backend": {"backend_type": "File", "backend_path": "`+mem+`"}, "track_dirty_pages": true}`)
	cfg := h.lastStart()
	if cfg.RestoreFiles == nil || *cfg.RestoreFiles != (vmm.SnapshotFiles{State: state, Memory: mem}) || !cfg.StartPaused || !cfg.TrackDirtyPages || !cfg.NoReboot {
		t.Fatalf("load config %+v (files %+v)", cfg, cfg.RestoreFiles)
	}
	var info instanceInfo
	h.get("/", &info)
	if info.State != "Paused" {
		t.Fatalf("state after load = %q", info.State)
	}
	var mc machineConfig
	h.get("/machine-config", &mc)
	if mc.VCPUCount != 2 || mc.MemSizeMib != 256 || !mc.TrackDirtyPages {
		t.Fatalf("machine config after load %+v", mc)
	}
	// Loaded: a second load, boot configuration and InstanceStart are post-boot.
	h.fault("PUT", "/snapshot/load", `{"snapshot_path": "`+state+`", "mem_file_path": "`+mem+`"}`, msgNotSupportedPostBoot)
	h.fault("PUT", "/actions", `{"action_type": "InstanceStart"}`, msgNotSupportedPostBoot)
	h.ok("PATCH", "/vm", `{"state": "Resumed"}`)
	h.ok("PATCH", "/vm", `{"state": "Paused"}`)
	h.ok("PUT", "/snapshot/create", `{"snapshot_type": "Diff", "snapshot_path": "s2", "mem_file_path": "`+mem+`"}`)
}

func TestSnapshotLoadResume(t *testing.T) {
	h, _ := snapHarness(t)
	state, mem := h.file("state", "s"), h.file("mem", "m")
	h.ok("PUT", "/snapshot/load", `{"snapshot_path": "`+state+`", "mem_file_path": "`+mem+`", "enable_diff_snapshots": false, "resume_vm": true}`)
	cfg := h.lastStart()
	if cfg.StartPaused || cfg.TrackDirtyPages {
		t.Fatalf("load config %+v", cfg)
	}
	var info instanceInfo
	h.get("/", &info)
	if info.State != "Running" {
		t.Fatalf("state after load = %q", info.State)
	}
}

func TestSnapshotLoadErrors(t *testing.T) {
	h, _ := snapHarness(t)
	state, mem := h.file("state", "s"), h.file("mem", "m")
	load := func(rest string) string { return `{"snapshot_path": "` + state + `"` + rest + `}` }
	for _, c := range []struct{ body, want string }{
		{load(``), msgMissingMem},
		{load(`, "mem_file_path": "` + mem + `", "mem_backend": {"backend_type": "File", "backend_path": "` + mem + `"}`), msgTooManyMem},
		{load(`, "mem_backend": {"backend_type": "Uffd", "backend_path": "/uffd.sock"}`), "Uffd memory backend is not implemented"},
		{load(`, "mem_backend": {"backend_type": "Disk", "backend_path": "x"}`), "unknown variant `Disk`"},
		{load(`, "mem_backend": {"backend_type": "File"}`), "missing field `backend_path`"},
		{load(`, "mem_file_path": "` + mem + `", "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap1"}]`), "network_overrides is not implemented"},
		{load(`, "mem_file_path": "` + mem + `", "vsock_override": {"uds_path": "/v.sock"}`), "vsock_override is not implemented"},
		{load(`, "mem_file_path": "` + mem + `", "clock_realtime": true`), "clock_realtime is not implemented"},
		{load(`, "mem_file_path": "` + mem + `", "huge_pages": "2M"`), "huge_pages other than Snapshot"},
		{load(`, "mem_file_path": "/nonexistent/mem"`), "Failed to load guest memory: /nonexistent/mem: no such file or directory"},
		{`{"snapshot_path": "` + h.dir + `", "mem_file_path": "` + mem + `"}`, "is a directory"},
		{`{"mem_file_path": "` + mem + `"}`, "missing field `snapshot_path`"},
	} {
		h.fault("PUT", "/snapshot/load", c.body, c.want)
	}
	h.startErr = errFake
	h.fault("PUT", "/snapshot/load", load(`, "mem_file_path": "`+mem+`"`), "Load snapshot error: Failed to restore from snapshot: fake failure")
	h.startErr = nil
	// A failed load leaves the process fresh: a boot still works.
	h.boot()
}

// Any boot-specific resource configured first forbids a load.
func TestSnapshotLoadAfterBootConfig(t *testing.T) {
	for name, req := range map[string][2]string{
		"machine-config": {"/machine-config", `{"vcpu_count": 2, "mem_size_mib": 128}`},
		"boot-source":    {"/boot-source", ""},
		"vsock":          {"/vsock", ""},
	} {
		t.Run(name, func(t *testing.T) {
			h, _ := snapHarness(t)
			body := req[1]
			switch name {
			case "boot-source":
				body = `{"kernel_image_path": "` + h.kernel + `"}`
			case "vsock":
				body = `{"guest_cid": 3, "uds_path": "` + filepath.Join(h.dir, "v.sock") + `"}`
			}
			h.ok("PUT", req[0], body)
			state, mem := h.file("state", "s"), h.file("mem", "m")
			h.fault("PUT", "/snapshot/load", `{"snapshot_path": "`+state+`", "mem_file_path": "`+mem+`"}`, msgLoadNotAllow)
		})
	}
}
