package qmp

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"
	"time"
)

// FuzzQMPInput feeds arbitrary bytes to a server session: it must never
// panic or hang, and everything it writes must be CRLF-terminated JSON
// objects, each a greeting, a reply or an event.
func FuzzQMPInput(f *testing.F) {
	neg := `{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`
	for _, seed := range []string{
		"",
		neg,
		neg + `{"execute":"query-status","id":1}`,
		neg + `{"execute":"stop"}{"execute":"cont"}{"execute":"system_reset"}{"execute":"system_powerdown"}{"execute":"quit"}`,
		neg + `{"execute":"human-monitor-command","arguments":{"command-line":"info cpus","cpu-index":1}}`,
		neg + `{"execute":"balloon","arguments":{"value":1}}{"exec-oob":"stop","id":[{}]}`,
		neg + `{"execute":"query-cpus-fast"}{"execute":"query-block"}{"execute":"query-commands"}`,
		neg + `{"execute":"query-stats","arguments":{"target":"vcpu","vcpus":["/machine/unattached/device[0]"],"providers":[{"provider":"kvm","names":["exits"]}]}}`,
		neg + `{"execute":"query-stats-schemas"}{"execute":"human-monitor-command","arguments":{"command-line":"info stats vm a,b kvm"}}`,
		`{"execute":"qmp_capabilities","arguments":{"enable":["x"]}}`,
		`[[[[{"a":"\u0000"}]]]]`,
		`{"a" 1}{,}@}]"x`,
		`{"id":1e999,"execute":"query-name"}`,
		"\xff\xfe{\"execute\":\"\xc3\x28\"}",
	} {
		f.Add([]byte(seed))
	}
	m := &statsMachine{newFakeMachine()}
	s := NewServer(m, Options{Package: "vireo-fuzz", MaxMessage: 4096})
	defer s.Close()
	f.Fuzz(func(t *testing.T, input []byte) {
		var out []byte
		done := make(chan struct{})
		go func() {
			defer close(done)
			out = runSession(s, input)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("session hung on this input\n%s", buf[:runtime.Stack(buf, true)])
		}
		if !bytes.HasSuffix(out, []byte("\r\n")) {
			t.Fatalf("output does not end with CRLF: %q", out)
		}
		lines := bytes.Split(bytes.TrimSuffix(out, []byte("\r\n")), []byte("\r\n"))
		for i, l := range lines {
			var msg map[string]json.RawMessage
			if err := json.Unmarshal(l, &msg); err != nil {
				t.Fatalf("line %d is not a JSON object: %q: %v", i, l, err)
			}
			if bytes.ContainsAny(l, "\r\n") {
				t.Fatalf("line %d holds a raw line break: %q", i, l)
			}
			_, greeting := msg["QMP"]
			_, ret := msg["return"]
			_, fail := msg["error"]
			_, event := msg["event"]
			if n := btoi(greeting) + btoi(ret) + btoi(fail) + btoi(event); n != 1 || greeting != (i == 0) {
				t.Fatalf("line %d is not one greeting, reply or event: %q", i, l)
			}
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
