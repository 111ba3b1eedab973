package fcapi

import (
	"slices"
	"testing"
)

func TestRouting(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct{ method, path, body, want string }{
		{"GET", "/foo", "", "Invalid request method and/or path: GET /foo."},
		{"GET", "/machine-config/x", "", "Invalid request method and/or path: GET /machine-config/x."},
		{"GET", "/vm", "", "Invalid request method and/or path: GET /vm."},
		{"GET", "/balloon/stats", "", "Invalid request method and/or path"},
		{"GET", "/", "{}", "GET request cannot have a body."},
		{"GET", "/nowhere", "{}", "GET request cannot have a body."},
		{"PUT", "/machine-config", "", "Empty PUT request."},
		{"PUT", "/nowhere", "", "Empty PUT request."},
		{"PATCH", "/vm", "", "Empty PATCH request."},
		{"POST", "/actions", `{"action_type": "InstanceStart"}`, "Invalid request method and/or path: POST /actions."},
		{"DELETE", "/drives/rootfs", "", "Invalid request method and/or path: DELETE /drives/rootfs."},
		{"HEAD", "/", "", "Invalid request method and/or path: HEAD /."},
		{"PUT", "/nowhere", "{}", "Invalid request method and/or path: PUT /nowhere."},
		{"PUT", "/actions/start", "{}", "Invalid request method and/or path: PUT /actions/start."},
		{"PUT", "/balloon/statistics", `{"stats_polling_interval_s": 1}`, "Invalid request method and/or path"},
		{"PATCH", "/balloon/other", `{"amount_mib": 1}`, "Invalid request method and/or path"},
		{"PATCH", "/vm/config", `{"state": "Paused"}`, "Invalid request method and/or path"},
		{"PATCH", "/boot-source", `{"kernel_image_path": "k"}`, "Invalid request method and/or path: PATCH /boot-source."},
		{"PUT", "/snapshot", `{}`, "Missing snapshot operation type."},
		{"PUT", "/snapshot/other", `{}`, "Invalid request method and/or path: PUT /snapshot/other."},
		{"PUT", "/snapshot/create", `{"snapshot_path": "s", "mem_file_path": "m"}`, msgNotSupportedPreBoot},
		{"PUT", "/snapshot/load", `{"snapshot_path": "s", "mem_file_path": "m"}`, "Failed to open snapshot file: s: no such file or directory"},
		{"PUT", "/mmds", `{"k": "v"}`, "MMDS is not implemented"},
		{"PUT", "/mmds/config", `{"network_interfaces": []}`, "MMDS is not implemented"},
		{"PATCH", "/mmds", `{"k": "v"}`, "MMDS is not implemented"},
		{"GET", "/mmds", "", "MMDS is not implemented"},
		{"PUT", "/drives", `{}`, msgEmptyID},
		{"PUT", "/network-interfaces/", `{}`, msgEmptyID},
		{"PUT", "/drives/d\u00e9j\u00e0", `{"drive_id": "d\u00e9j\u00e0", "path_on_host": "/nonexistent", "is_root_device": false}`, "Unable to create the block device"},
		{"PUT", "/drives/a b", `{}`, msgInvalidID},
		{"GET", "/\x00\xff", "", "Invalid request method and/or path: GET /??."},
	} {
		h.fault(c.method, c.path, c.body, c.want)
	}
	// Leading and trailing slashes are not significant.
	for _, p := range []string{"//machine-config", "/machine-config/", "machine-config"} {
		var mc machineConfig
		h.get(p, &mc)
	}
}

func TestPathTokens(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"/", nil},
		{"///", nil},
		{"/a", []string{"a"}},
		{"/a/", []string{"a"}},
		{"/a//b", []string{"a", "", "b"}},
		{"a/b/c", []string{"a", "b", "c"}},
	} {
		if got := pathTokens(c.in); !slices.Equal(got, c.want) {
			t.Errorf("pathTokens(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSanitize(t *testing.T) {
	long := make([]byte, 1000)
	for i := range long {
		long[i] = 'a'
	}
	if got := sanitize(string(long)); len(got) != 259 {
		t.Errorf("sanitize did not shorten: %d bytes", len(got))
	}
	if got := sanitize("a\nb\x1b\xffc"); got != "a?b??c" {
		t.Errorf("sanitize = %q", got)
	}
}
