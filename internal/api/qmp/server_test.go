package qmp

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGreeting(t *testing.T) {
	s, _ := newTestServer(t, Options{Package: "vireo-1.2.3"})
	a, b := net.Pipe()
	defer a.Close()
	go s.ServeConn(b)
	c := &client{t: t, conn: a}
	c.r = newReader(a)
	want := `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "vireo-1.2.3"}, "capabilities": ["oob"]}}`
	if got := c.line(); got != want {
		t.Fatalf("greeting\n got %s\nwant %s", got, want)
	}
}

func TestNegotiation(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := connect(t, s)
	for _, tc := range []struct{ in, want string }{
		{`{"execute":"query-status"}`, `{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}`},
		{`{"execute":"nope","id":3}`, `{"id": 3, "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}`},
		{`{"exec-oob":"qmp_capabilities"}`, `{"error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}`},
		{`{"execute":"qmp_capabilities","arguments":{"enable":"oob"}}`, `{"error": {"class": "GenericError", "desc": "Invalid parameter type for 'enable', expected: array"}}`},
		{`{"execute":"qmp_capabilities","arguments":{"enable":[1]}}`, `{"error": {"class": "GenericError", "desc": "Invalid parameter type for 'enable[0]', expected: string"}}`},
		{`{"execute":"qmp_capabilities","arguments":{"enable":["foo"]}}`, `{"error": {"class": "GenericError", "desc": "Parameter 'enable[0]' does not accept value 'foo'"}}`},
		{`{"execute":"qmp_capabilities","arguments":{"x":1}}`, `{"error": {"class": "GenericError", "desc": "Parameter 'x' is unexpected"}}`},
		{`{"execute":"qmp_capabilities","arguments":{"enable":[]},"id":"n"}`, `{"return": {}, "id": "n"}`},
		{`{"execute":"qmp_capabilities"}`, `{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}`},
		{`{"execute":"query-status"}`, `{"return": {"status": "running", "singlestep": false, "running": true}}`},
	} {
		if got := c.do(tc.in); got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestOOBCapability(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := connect(t, s)
	if got := c.do(`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`); got != `{"return": {}}` {
		t.Fatalf("enable oob: %s", got)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"exec-oob":"query-status","id":1}`, `{"id": 1, "error": {"class": "GenericError", "desc": "The command query-status does not support OOB"}}`},
		{`{"exec-oob":"query-status","execute":"query-name"}`, `{"error": {"class": "GenericError", "desc": "QMP input member 'execute' clashes with 'exec-oob'"}}`},
	} {
		if got := c.do(tc.in); got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// The expected replies were taken from QEMU 7.2 given the same input.
func TestErrors(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := negotiated(t, s)
	generic := func(desc string) string {
		return fmt.Sprintf(`{"error": {"class": "GenericError", "desc": "%s"}}`, desc)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"execute":"nope","id":1}`, `{"id": 1, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}`},
		{`{"execute":"query-status","arguments":{"x":1},"id":"s"}`, `{"id": "s", "error": {"class": "GenericError", "desc": "Parameter 'x' is unexpected"}}`},
		{`[1,2]`, generic("QMP input must be a JSON object")},
		{`"str"`, generic("QMP input must be a JSON object")},
		{`null `, generic("QMP input must be a JSON object")},
		{`42 `, generic("QMP input must be a JSON object")},
		{`{"foo":1}`, generic("QMP input member 'foo' is unexpected")},
		{`{"foo":1,"id":5}`, `{"id": 5, "error": {"class": "GenericError", "desc": "QMP input member 'foo' is unexpected"}}`},
		{`{"execute":1}`, generic("QMP input member 'execute' must be a string")},
		{`{"execute":"stop","arguments":[]}`, generic("QMP input member 'arguments' must be an object")},
		{`{"id":7}`, `{"id": 7, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}`},
		{`{"exec-oob":"stop"}`, generic("QMP input member 'exec-oob' is unexpected")},
		{`{"execute":"balloon","arguments":{"value":"x"}}`, generic("Invalid parameter type for 'value', expected: integer")},
		{`{"execute":"balloon","arguments":{"value":1.5}}`, generic("Invalid parameter type for 'value', expected: integer")},
		{`{"execute":"balloon","arguments":{}}`, generic("Parameter 'value' is missing")},
		{`{"execute":"balloon","arguments":{"value":1024}}`, `{"error": {"class": "DeviceNotActive", "desc": "No balloon device has been activated"}}`},
		{`{"execute":"query-balloon"}`, `{"error": {"class": "DeviceNotActive", "desc": "No balloon device has been activated"}}`},
		{`{"execute":"human-monitor-command","arguments":{"command-line":"info status","cpu-index":"x"}}`, generic("Invalid parameter type for 'cpu-index', expected: integer")},
		{`{"execute":"human-monitor-command","arguments":{"command-line":"info status","cpu-index":5}}`, generic("Parameter 'cpu-index' expects a CPU number")},
		{`{"execute":"human-monitor-command","arguments":{}}`, generic("Parameter 'command-line' is missing")},
		{`}`, generic("JSON parse error, expecting value")},
		{`]`, generic("JSON parse error, expecting value")},
		{`@`, generic("JSON parse error, stray '@'")},
		{`garbage `, generic("JSON parse error, invalid keyword 'garbage'")},
		{`{"execute":"query-name","arguments":{"a":{"b":1,"b":2}},"id":8}`, generic("JSON parse error, duplicate key")},
		{`{"execute":"query-name","execute":"query-uuid"}`, generic("JSON parse error, duplicate key")},
	} {
		if got := c.do(tc.in); got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
	// Malformed JSON: QEMU's prefix, then the parser's own words.
	for _, in := range []string{`{"a" 1}`, `{"execute":}`, `{,}`, `{"execute":"query-status",}`, `{"a":1]`, `["a" "b"]`, "{\"a\":\"\x01\"}"} {
		got := c.do(in)
		if !strings.HasPrefix(got, `{"error": {"class": "GenericError", "desc": "JSON parse error, `) {
			t.Errorf("%s: got %s, want a JSON parse error", in, got)
		}
	}
	// The session survives all of it.
	if got := c.do(`{"execute":"query-name"}`); got != `{"return": {}}` {
		t.Errorf("after errors: %s", got)
	}
}

func TestIDEcho(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := negotiated(t, s)
	for _, id := range []struct{ in, want string }{
		{`1`, `1`},
		{`"s"`, `"s"`},
		{`null`, `null`},
		{`true`, `true`},
		{`-0`, `-0`},
		{`1.5e3`, `1.5e3`},
		{`12345678901234567890`, `12345678901234567890`},
		{`1e400`, `1e400`},
		{`[true, false]`, `[true, false]`},
		{`{"a": [1, 2.5, null], "b": {}}`, `{"a": [1, 2.5, null], "b": {}}`},
		{`"\u00e9<>&\"\\ :,"`, `"\u00e9<>&\"\\ :,"`},
		{`"é"`, `"é"`},
	} {
		got := c.do(`{"execute":"query-name","id":` + id.in + `}`)
		if want := `{"return": {}, "id": ` + id.want + `}`; got != want {
			t.Errorf("id %s\n got %s\nwant %s", id.in, got, want)
		}
		got = c.do(`{"id":` + id.in + `,"execute":"no-such"}`)
		if want := `{"id": ` + id.want + `, "error": {"class": "CommandNotFound", "desc": "The command no-such has not been found"}}`; got != want {
			t.Errorf("id %s on error\n got %s\nwant %s", id.in, got, want)
		}
	}
}

func TestStreamFraming(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := negotiated(t, s)
	// Three messages in one write, with and without separators.
	c.send(`{"execute":"query-name","id":1}{"execute":"query-name","id":2}` + "\r\n \t" + `{"execute":"query-name","id":3}`)
	for i := 1; i <= 3; i++ {
		if got, want := c.line(), fmt.Sprintf(`{"return": {}, "id": %d}`, i); got != want {
			t.Errorf("batched reply %d: %s", i, got)
		}
	}
	// One message split into single bytes, strings with braces inside.
	msg := `{"execute":"query-name","id":"a}]{[\"\\"}`
	for i := 0; i < len(msg); i++ {
		c.send(msg[i : i+1])
	}
	if got, want := c.line(), `{"return": {}, "id": "a}]{[\"\\"}`; got != want {
		t.Errorf("split message\n got %s\nwant %s", got, want)
	}
}

func TestOversizedMessage(t *testing.T) {
	s, m := newTestServer(t, Options{})
	c := negotiated(t, s)
	// 10 MiB of argument, then a normal command: one error for the
	// first, a reply for the second.
	big := `{"execute":"stop","arguments":{"x":"` + strings.Repeat("A", 10<<20) + `"}}{"execute":"query-name","id":2}`
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.conn.Write([]byte(big)); err != nil {
			t.Errorf("writing 10 MiB: %v", err)
		}
	}()
	want := `{"error": {"class": "GenericError", "desc": "JSON parse error, message longer than 1048576 bytes"}}`
	if got := c.line(); got != want {
		t.Errorf("oversized message\n got %s\nwant %s", got, want)
	}
	if got := c.line(); got != `{"return": {}, "id": 2}` {
		t.Errorf("after oversized message: %s", got)
	}
	<-done
	if n := m.count("pause"); n != 0 {
		t.Errorf("oversized stop ran %d times", n)
	}
}

func TestNestingLimit(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := negotiated(t, s)
	deep := strings.Repeat("[", 2000) + strings.Repeat("]", 2000)
	c.send(deep + `{"execute":"query-name"}`)
	if got, want := c.line(), `{"error": {"class": "GenericError", "desc": "JSON parse error, nesting depth limit exceeded"}}`; got != want {
		t.Errorf("deep nesting: %s", got)
	}
	if got := c.line(); got != `{"return": {}}` {
		t.Errorf("after deep nesting: %s", got)
	}
}

func TestQueries(t *testing.T) {
	s, m := newTestServer(t, Options{Name: "vm1", UUID: "12345678-1234-1234-1234-123456789abc"})
	m.blocks = []BlockDevice{{Device: "disk0", File: "/img/root.raw", ReadOnly: true, Size: 1 << 30}}
	c := negotiated(t, s)
	for _, tc := range []struct{ in, want string }{
		{`{"execute":"query-version"}`, `{"return": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "vireo-test"}}`},
		{`{"execute":"query-name"}`, `{"return": {"name": "vm1"}}`},
		{`{"execute":"query-uuid"}`, `{"return": {"UUID": "12345678-1234-1234-1234-123456789abc"}}`},
		{`{"execute":"query-kvm"}`, `{"return": {"enabled": true, "present": true}}`},
		{`{"execute":"query-memory-size-summary"}`, `{"return": {"base-memory": 134217728, "plugged-memory": 0}}`},
		{`{"execute":"query-cpus-fast"}`, `{"return": [` +
			`{"thread-id": 1000, "props": {"core-id": 0, "thread-id": 0, "socket-id": 0}, "qom-path": "/machine/unattached/device[0]", "cpu-index": 0, "target": "x86_64"}, ` +
			`{"thread-id": 1001, "props": {"core-id": 1, "thread-id": 0, "socket-id": 0}, "qom-path": "/machine/unattached/device[1]", "cpu-index": 1, "target": "x86_64"}]}`},
		{`{"execute":"query-status","arguments":{}}`, `{"return": {"status": "running", "singlestep": false, "running": true}}`},
	} {
		if got := c.do(tc.in); got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
	blk := decode(t, c.do(`{"execute":"query-block"}`))
	list := blk["return"].([]any)
	if len(list) != 1 {
		t.Fatalf("query-block: %v", blk)
	}
	dev := list[0].(map[string]any)
	ins := dev["inserted"].(map[string]any)
	if dev["device"] != "disk0" || ins["file"] != "/img/root.raw" || ins["ro"] != true || ins["drv"] != "raw" {
		t.Errorf("query-block: %v", dev)
	}
	cmds := c.do(`{"execute":"query-commands"}`)
	for _, name := range []string{"qmp_capabilities", "query-status", "stop", "cont", "system_reset", "system_powerdown", "quit", "human-monitor-command", "query-cpus-fast", "query-block", "balloon"} {
		if !strings.Contains(cmds, `{"name": "`+name+`"}`) {
			t.Errorf("query-commands lacks %s: %s", name, cmds)
		}
	}
}

func TestQueryBlockEmpty(t *testing.T) {
	s, m := newTestServer(t, Options{})
	c := negotiated(t, s)
	if got := c.do(`{"execute":"query-block"}`); got != `{"return": []}` {
		t.Errorf("query-block: %s", got)
	}
	if got := c.do(`{"execute":"query-name"}`); got != `{"return": {}}` {
		t.Errorf("query-name without a name: %s", got)
	}
	if got := c.do(`{"execute":"query-uuid"}`); got != `{"return": {"UUID": "00000000-0000-0000-0000-000000000000"}}` {
		t.Errorf("query-uuid: %s", got)
	}
	m.balloon = 100 << 20
	if got := c.do(`{"execute":"query-balloon"}`); got != `{"return": {"actual": 104857600}}` {
		t.Errorf("query-balloon: %s", got)
	}
	if got := c.do(`{"execute":"balloon","arguments":{"value":0}}`); got != `{"error": {"class": "GenericError", "desc": "Parameter 'target' expects a size"}}` {
		t.Errorf("balloon 0: %s", got)
	}
	if got := c.do(`{"execute":"balloon","arguments":{"value":67108864}}`); got != `{"return": {}}` || m.balloon != 64<<20 {
		t.Errorf("balloon: %s, target %d", got, m.balloon)
	}
}

func TestActionsAndEvents(t *testing.T) {
	s, m := newTestServer(t, Options{})
	c := negotiated(t, s)
	// The event comes first, then the reply, as in QEMU.
	c.send(`{"execute":"stop","id":"a"}`)
	ev := decode(t, c.line())
	if ev["event"] != "STOP" {
		t.Fatalf("want STOP first, got %v", ev)
	}
	ts := ev["timestamp"].(map[string]any)
	sec, _ := ts["seconds"].(jsonNumber).Int64()
	us, _ := ts["microseconds"].(jsonNumber).Int64()
	if now := time.Now().Unix(); sec < now-60 || sec > now+1 || us < 0 || us >= 1e6 {
		t.Errorf("timestamp %v", ts)
	}
	if _, ok := ev["data"]; ok {
		t.Errorf("STOP has data: %v", ev)
	}
	if got := c.line(); got != `{"return": {}, "id": "a"}` {
		t.Errorf("stop reply: %s", got)
	}
	if got := c.do(`{"execute":"query-status"}`); got != `{"return": {"status": "paused", "singlestep": false, "running": false}}` {
		t.Errorf("status after stop: %s", got)
	}
	// stop again: success, no event (QEMU).
	if got := c.do(`{"execute":"stop"}`); got != `{"return": {}}` {
		t.Errorf("second stop: %s", got)
	}
	c.send(`{"execute":"cont"}`)
	if got := decode(t, c.line()); got["event"] != "RESUME" {
		t.Errorf("want RESUME, got %v", got)
	}
	if got := c.line(); got != `{"return": {}}` {
		t.Errorf("cont: %s", got)
	}
	for _, tc := range []struct{ cmd, event, data string }{
		{"system_reset", "RESET", `"data": {"guest": false, "reason": "host-qmp-system-reset"}}`},
		{"system_powerdown", "POWERDOWN", `"event": "POWERDOWN"}`},
		{"quit", "SHUTDOWN", `"data": {"guest": false, "reason": "host-qmp-quit"}}`},
	} {
		c.send(`{"execute":"` + tc.cmd + `"}`)
		l := c.line()
		if !strings.Contains(l, `"event": "`+tc.event+`"`) || !strings.HasSuffix(l, tc.data) {
			t.Errorf("%s: event %s", tc.cmd, l)
		}
		if got := c.line(); got != `{"return": {}}` {
			t.Errorf("%s: %s", tc.cmd, got)
		}
	}
	for _, name := range []string{"pause", "resume", "reset", "powerdown", "quit"} {
		if m.count(name) == 0 {
			t.Errorf("machine never saw %s", name)
		}
	}
}

func TestNoEventsBeforeNegotiation(t *testing.T) {
	s, m := newTestServer(t, Options{})
	quiet := connect(t, s)
	loud := negotiated(t, s)
	m.emit("POWERDOWN", nil)
	if got := decode(t, loud.line()); got["event"] != "POWERDOWN" {
		t.Fatalf("negotiated client: %v", got)
	}
	// The first thing the other client sees is its own reply.
	if got := quiet.do(`{"execute":"query-status"}`); !strings.Contains(got, "CommandNotFound") {
		t.Errorf("unnegotiated client: %s", got)
	}
}

func TestHumanMonitor(t *testing.T) {
	s, m := newTestServer(t, Options{Package: "vireo-9"})
	c := negotiated(t, s)
	hmp := func(line string) string {
		t.Helper()
		got := decode(t, c.do(`{"execute":"human-monitor-command","arguments":{"command-line":"`+line+`"}}`))
		out, ok := got["return"].(string)
		if !ok {
			t.Fatalf("hmp %q: %v", line, got)
		}
		return out
	}
	for _, tc := range []struct{ in, want string }{
		{"info status", "VM status: running\r\n"},
		{"  info   status  ", "VM status: running\r\n"},
		{"info cpus", "* CPU #0: thread_id=1000\r\n  CPU #1: thread_id=1001\r\n"},
		{"info block", ""},
		{"info balloon", "Error: No balloon device has been activated\r\n"},
		{"info version", "7.2.0vireo-9\r\n"},
		{"info kvm", "kvm support: enabled\r\n"},
		{"info xyz", "unknown command: 'info xyz'\r\n"},
		{"xyz", "unknown command: 'xyz'\r\n"},
		{"", ""},
		{"stop", ""},
		{"info status", "VM status: paused\r\n"},
		{"c", ""},
		{"info status", "VM status: running\r\n"},
	} {
		if got := hmp(tc.in); got != tc.want {
			t.Errorf("hmp %q = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := hmp("info"); !strings.Contains(got, "info status  -- show the current VM status (running|paused)\r\n") {
		t.Errorf("info: %q", got)
	}
	got := decode(t, c.do(`{"execute":"human-monitor-command","arguments":{"command-line":"info cpus","cpu-index":1}}`))
	if got["return"] != "  CPU #0: thread_id=1000\r\n* CPU #1: thread_id=1001\r\n" {
		t.Errorf("info cpus on cpu 1: %v", got)
	}
	m.blocks = []BlockDevice{{Device: "disk0", File: "/img/a.raw", ReadOnly: true}}
	if got := hmp("info block"); got != "disk0: /img/a.raw (raw, read-only)\r\n    Cache mode:       writeback\r\n" {
		t.Errorf("info block: %q", got)
	}
	m.mu.Lock()
	m.state = StatePrelaunch
	m.mu.Unlock()
	if got := hmp("info status"); got != "VM status: paused (prelaunch)\r\n" {
		t.Errorf("info status in prelaunch: %q", got)
	}
}

// A client that goes away in the middle of a command leaves the VM as it
// was: a partial command never runs.
func TestDisconnectMidCommand(t *testing.T) {
	s, m := newTestServer(t, Options{})
	c := negotiated(t, s)
	c.send(`{"execute":"stop","arguments":{`)
	c.conn.Close()
	waitSessions(t, s, 0)
	if m.count("pause") != 0 || m.Status() != StateRunning {
		t.Fatalf("partial stop ran: %d pauses, state %s", m.count("pause"), m.Status())
	}
	// Other clients are unaffected.
	if got := negotiated(t, s).do(`{"execute":"query-status"}`); !strings.Contains(got, `"running"`) {
		t.Errorf("after disconnect: %s", got)
	}
}

// A client that disconnects while its command runs: the command completes
// exactly once, its reply is dropped, nothing hangs.
func TestDisconnectDuringCommand(t *testing.T) {
	s, m := newTestServer(t, Options{})
	m.block = make(chan struct{})
	m.entered = make(chan struct{}, 1)
	c := negotiated(t, s)
	c.send(`{"execute":"stop"}`)
	<-m.entered
	c.conn.Close()
	close(m.block)
	waitSessions(t, s, 0)
	if m.count("pause") != 1 || m.Status() != StatePaused {
		t.Fatalf("stop ran %d times, state %s", m.count("pause"), m.Status())
	}
}

func waitSessions(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		got := len(s.sessions)
		s.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A client that stops reading is disconnected once its queue is full;
// the VM's event path never waits and other clients get every event.
func TestSlowClientDropped(t *testing.T) {
	s, m := newTestServer(t, Options{QueueLen: 4})
	slow := negotiated(t, s) // never reads again
	fast := negotiated(t, s)
	const n = 200 // well past the queue and the writer's 4 KiB buffer
	start := time.Now()
	for i := 0; i < n; i++ {
		m.emit("POWERDOWN", nil)
		if l := fast.line(); !strings.Contains(l, `"event": "POWERDOWN"`) {
			t.Fatalf("fast client, event %d: %s", i, l)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("%d events took %v", n, d)
	}
	waitSessions(t, s, 1)
	slow.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1<<16)
	for {
		if _, err := slow.conn.Read(buf); err != nil {
			break // disconnected (after whatever was written before)
		}
	}
}

// 100 clients at once over a real Unix socket: each negotiates, queries,
// and receives the STOP event that one of them causes.
func TestManyClients(t *testing.T) {
	s, m := newTestServer(t, Options{})
	path := filepath.Join(t.TempDir(), "qmp.sock")
	sp, err := ParseSpec("unix:" + path + ",server=on,wait=off")
	if err != nil {
		t.Fatal(err)
	}
	l, err := sp.Listen()
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	const n = 100
	clients := make([]*client, n)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("unix", path)
			if err != nil {
				t.Error(err)
				return
			}
			c := &client{t: t, conn: conn, r: newReader(conn)}
			t.Cleanup(func() { conn.Close() })
			c.line()
			if got := c.do(fmt.Sprintf(`{"execute":"qmp_capabilities","id":%d}`, i)); got != fmt.Sprintf(`{"return": {}, "id": %d}`, i) {
				t.Errorf("client %d: %s", i, got)
			}
			if got := c.do(`{"execute":"query-status"}`); !strings.Contains(got, `"status": "running"`) {
				t.Errorf("client %d: %s", i, got)
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if got := clients[0].do(`{"execute":"stop"}`); got != `{"return": {}}` {
		t.Fatalf("stop: %s", got)
	}
	for i, c := range clients[1:] {
		if got := decode(t, c.line()); got["event"] != "STOP" {
			t.Errorf("client %d: %v", i+1, got)
		}
	}
	if m.count("pause") != 1 {
		t.Errorf("%d pauses", m.count("pause"))
	}
}

// Close lets a command in progress send its reply: quit's reply reaches
// the client although the VMM closes the server right after.
func TestCloseDeliversLastReply(t *testing.T) {
	s, m := newTestServer(t, Options{})
	m.block = make(chan struct{})
	m.entered = make(chan struct{}, 1)
	c := negotiated(t, s)
	c.send(`{"execute":"stop","id":"last"}`)
	<-m.entered
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	time.Sleep(20 * time.Millisecond)
	close(m.block)
	if ev := decode(t, c.line()); ev["event"] != "STOP" {
		t.Errorf("want STOP, got %v", ev)
	}
	if got := c.line(); got != `{"return": {}, "id": "last"}` {
		t.Errorf("last reply: %s", got)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := c.r.ReadByte(); err == nil {
		t.Error("connection still open after Close")
	}
}

func TestCloseStopsServe(t *testing.T) {
	s := NewServer(newFakeMachine(), Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no TCP loopback: %v", err)
	}
	served := make(chan error)
	go func() { served <- s.Serve(l) }()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &client{t: t, conn: conn, r: newReader(conn)}
	c.line()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != ErrServerClosed {
		t.Errorf("Serve returned %v", err)
	}
	if err := s.Serve(l); err != ErrServerClosed {
		t.Errorf("Serve after Close: %v", err)
	}
}

func TestMaxClients(t *testing.T) {
	s, _ := newTestServer(t, Options{MaxClients: 1})
	negotiated(t, s)
	a, b := net.Pipe()
	defer a.Close()
	done := make(chan struct{})
	go func() { s.ServeConn(b); close(done) }()
	<-done
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.Read(make([]byte, 1)); err == nil {
		t.Error("second client was served")
	}
}

// An event raised as soon as a client has its negotiation reply reaches
// it: no window in which a negotiated client misses events.
func TestEventRightAfterNegotiation(t *testing.T) {
	s, m := newTestServer(t, Options{})
	for i := 0; i < 50; i++ {
		c := negotiated(t, s)
		m.emit("POWERDOWN", nil)
		if got := c.line(); !strings.Contains(got, `"event": "POWERDOWN"`) {
			t.Fatalf("round %d: %s", i, got)
		}
		c.conn.Close()
	}
}
