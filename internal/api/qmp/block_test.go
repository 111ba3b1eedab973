package qmp

import "testing"

// TestBlockCacheModes: query-block and info block report each disk's
// cache mode as QEMU does.
func TestBlockCacheModes(t *testing.T) {
	s, m := newTestServer(t, Options{})
	m.blocks = []BlockDevice{
		{Device: "a", File: "/a.raw", Cache: "writeback"},
		{Device: "b", File: "/b.raw", Cache: "none"},
		{Device: "c", File: "/c.qcow2", Format: "qcow2", ReadOnly: true, Cache: "unsafe"},
	}
	c := negotiated(t, s)
	list := decode(t, c.do(`{"execute":"query-block"}`))["return"].([]any)
	for i, want := range []map[string]bool{
		{"writeback": true, "direct": false, "no-flush": false},
		{"writeback": true, "direct": true, "no-flush": false},
		{"writeback": true, "direct": false, "no-flush": true},
	} {
		cache := list[i].(map[string]any)["inserted"].(map[string]any)["cache"].(map[string]any)
		for k, v := range want {
			if cache[k] != v {
				t.Errorf("disk %d cache %s = %v, want %v", i, k, cache[k], v)
			}
		}
	}
	got := decode(t, c.do(`{"execute":"human-monitor-command","arguments":{"command-line":"info block"}}`))
	want := "a: /a.raw (raw)\r\n    Cache mode:       writeback\r\n" +
		"b: /b.raw (raw)\r\n    Cache mode:       writeback, direct\r\n" +
		"c: /c.qcow2 (qcow2, read-only)\r\n    Cache mode:       writeback, ignore flushes\r\n"
	if got["return"] != want {
		t.Errorf("info block = %q, want %q", got["return"], want)
	}
}
