package fcapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/vireo-vmm/vireo/internal/vmm"
)

// fuzzServer is a server whose log and metrics files are /dev/null, so
// fuzzed paths never create files.
func fuzzServer() *Server {
	s := New(Options{
		Version:         "fuzz",
		Log:             slog.New(slog.DiscardHandler),
		Logs:            NewLogSwitch(slog.DiscardHandler),
		MetricsInterval: -1,
		Start: func(vmm.Config) (Instance, error) {
			return &fakeVM{state: vmm.StateRunning}, nil
		},
	})
	s.openSink = func(string) (*os.File, error) { return os.OpenFile(os.DevNull, os.O_WRONLY, 0) }
	return s
}

// FuzzFCRequest drives arbitrary methods, paths and bodies through the
// HTTP handler of a server before and after InstanceStart: it must never
// panic, and must always answer 200 with JSON, 204 with nothing, or 400
// with a JSON fault.
func FuzzFCRequest(f *testing.F) {
	kernel := filepath.Join(f.TempDir(), "vmlinux")
	if err := os.WriteFile(kernel, []byte("kernel"), 0o644); err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct{ method, path, body string }{
		{"GET", "/", ""},
		{"GET", "/machine-config", ""},
		{"GET", "/vm/config", ""},
		{"GET", "/version", ""},
		{"GET", "/balloon/statistics", ""},
		{"PUT", "/machine-config", `{"vcpu_count": 2, "mem_size_mib": 256, "smt": false, "cpu_template": "None", "huge_pages": "2M"}`},
		{"PATCH", "/machine-config", `{"vcpu_count": 1}`},
		{"PUT", "/boot-source", `{"kernel_image_path": "` + kernel + `", "boot_args": "console=ttyS0"}`},
		{"PUT", "/drives/rootfs", `{"drive_id": "rootfs", "path_on_host": "` + kernel + `", "is_root_device": true, "is_read_only": true, "rate_limiter": {"bandwidth": {"size": 1, "refill_time": 2}}}`},
		{"PATCH", "/drives/rootfs", `{"drive_id": "rootfs", "path_on_host": "x"}`},
		{"PUT", "/network-interfaces/eth0", `{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "aa:bb:cc:dd:ee:ff"}`},
		{"PUT", "/vsock", `{"guest_cid": 3, "uds_path": "/tmp/v.sock"}`},
		{"PUT", "/balloon", `{"amount_mib": 1, "deflate_on_oom": true, "stats_polling_interval_s": 1}`},
		{"PATCH", "/balloon", `{"amount_mib": 1}`},
		{"PATCH", "/balloon/statistics", `{"stats_polling_interval_s": 1}`},
		{"PUT", "/logger", `{"log_path": "/x", "level": "Debug", "show_level": true}`},
		{"PUT", "/metrics", `{"metrics_path": "/x"}`},
		{"PUT", "/actions", `{"action_type": "InstanceStart"}`},
		{"PUT", "/actions", `{"action_type": "FlushMetrics"}`},
		{"PUT", "/actions", `{"action_type": "SendCtrlAltDel"}`},
		{"PATCH", "/vm", `{"state": "Paused"}`},
		{"PUT", "/snapshot/create", `{}`},
		{"PUT", "/mmds", `{"a": [1, {"b": null}]}`},
		{"DELETE", "/drives/x", ""},
		{"PUT", "/drives/x", `{"drive_id": "x", "drive_id": "y"}`},
		{"PUT", "/machine-config", `{"vcpu_count": 1e400, "mem_size_mib": -0}`},
		{"PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128}\x00"},
		{"GET", "//\xff/../%00", "\xef\xbb\xbf{}"},
	} {
		f.Add(s.method, s.path, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		pre := fuzzServer()
		defer pre.Close()
		post := fuzzServer()
		defer post.Close()
		if r := post.Handle("PUT", "/boot-source", []byte(`{"kernel_image_path": "`+kernel+`"}`)); r.Status != http.StatusNoContent {
			t.Fatalf("boot-source: %d %s", r.Status, r.Body)
		}
		if r := post.Handle("PUT", "/actions", []byte(`{"action_type": "InstanceStart"}`)); r.Status != http.StatusNoContent {
			t.Fatalf("InstanceStart: %d %s", r.Status, r.Body)
		}
		for _, s := range []*Server{pre, post} {
			checkResponse(t, s.Handle(method, path, body))
			checkHTTP(t, s, method, path, body)
		}
	})
}

// checkResponse asserts one of the three response shapes.
func checkResponse(t *testing.T, r Response) {
	t.Helper()
	switch r.Status {
	case http.StatusNoContent:
		if len(r.Body) != 0 {
			t.Fatalf("204 with a body: %q", r.Body)
		}
	case http.StatusOK:
		if !json.Valid(r.Body) {
			t.Fatalf("200 with invalid JSON: %q", r.Body)
		}
	case http.StatusBadRequest:
		faultMessage(t, string(r.Body))
	default:
		t.Fatalf("unexpected status %d: %q", r.Status, r.Body)
	}
}

// checkHTTP sends the request through ServeHTTP.
func checkHTTP(t *testing.T, s *Server, method, path string, body []byte) {
	t.Helper()
	req := &http.Request{
		Method:        method,
		URL:           &url.URL{Path: path},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Host:          "localhost",
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	res := rec.Result()
	got, _ := io.ReadAll(res.Body)
	checkResponse(t, Response{Status: res.StatusCode, Body: got})
	if res.StatusCode != http.StatusNoContent && res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d without a JSON content type", res.StatusCode)
	}
}
