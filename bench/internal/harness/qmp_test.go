package harness

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeQMP serves one QMP client on a Unix socket: it greets, and answers
// each input line with the replies script gives for it.
func fakeQMP(t *testing.T, script func(line string) []string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "q.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte(`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}` + "\r\n"))
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			for _, r := range script(sc.Text()) {
				if _, err := c.Write([]byte(r + "\r\n")); err != nil {
					return
				}
			}
		}
	}()
	return sock
}

func TestQMPClient(t *testing.T) {
	long := strings.Repeat("x", 100<<10)
	sock := fakeQMP(t, func(line string) []string {
		switch {
		case strings.Contains(line, "qmp_capabilities"):
			return []string{`{"return": {}}`}
		case strings.Contains(line, "query-status"):
			return []string{
				`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"}`,
				`{"return": {"status": "running", "singlestep": false, "running": true}}`,
			}
		case strings.Contains(line, "query-long"):
			return []string{`{"return": {"s": "` + long + `"}}`}
		case strings.Contains(line, "with-id"):
			return []string{`{"id": 7, "error": {"class": "GenericError", "desc": "no"}}`}
		}
		return []string{`{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}`}
	})
	q, err := DialQMP(context.Background(), sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	line, err := q.RoundTrip([]byte(`{"execute": "query-status"}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(line), `{"return": {"status": "running"`) || strings.HasSuffix(string(line), "\r") {
		t.Errorf("reply = %q", line)
	}
	if len(q.Events) != 1 || !strings.Contains(string(q.Events[0]), "RESUME") {
		t.Errorf("events = %q", q.Events)
	}
	ret, err := q.Call("query-long", nil)
	if err != nil || len(ret) < len(long) {
		t.Errorf("long reply: %d bytes, %v", len(ret), err)
	}
	if _, err := q.Call("nope", map[string]any{"a": 1}); !errors.Is(err, ErrQMP) || !strings.Contains(err.Error(), "CommandNotFound") {
		t.Errorf("error reply: %v", err)
	}
	if _, err := q.Call("with-id", nil); !errors.Is(err, ErrQMP) || !strings.Contains(err.Error(), "GenericError") {
		t.Errorf("error reply with an id: %v", err)
	}
}

func TestDialQMPFailures(t *testing.T) {
	dir := t.TempDir()
	if _, err := DialQMP(context.Background(), filepath.Join(dir, "none"), 30*time.Millisecond); !errors.Is(err, ErrQMP) {
		t.Errorf("no socket: %v", err)
	}
	// A server that does not greet.
	sock := filepath.Join(dir, "mute.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("{\"return\": {}}\r\n"))
			time.Sleep(time.Second)
			c.Close()
		}
	}()
	if _, err := DialQMP(context.Background(), sock, 5*time.Second); !errors.Is(err, ErrQMP) {
		t.Errorf("no greeting: %v", err)
	}
}

func TestIsReply(t *testing.T) {
	for line, want := range map[string]bool{
		`{"return": {}}`:                                 true,
		`{"error": {"class": "x", "desc": "y"}}`:         true,
		`{"id": 1, "return": {}}`:                        true,
		`{"timestamp": {"seconds": 1}, "event": "STOP"}`: false,
		`{"event": "SHUTDOWN", "data": {"guest": true}}`: false,
		`not json`: true,
	} {
		if got := isReply([]byte(line)); got != want {
			t.Errorf("isReply(%s) = %v, want %v", line, got, want)
		}
	}
}

func TestQMPVCPUsAndKVMStats(t *testing.T) {
	sock := fakeQMP(t, func(line string) []string {
		switch {
		case strings.Contains(line, "qmp_capabilities"):
			return []string{`{"return": {}}`}
		case strings.Contains(line, "query-cpus-fast"):
			return []string{`{"return": [{"thread-id": 11, "cpu-index": 0}, {"thread-id": 12, "cpu-index": 1}]}`}
		case strings.Contains(line, `"names":["exits","irq_injections"]`):
			return []string{`{"return": [{"provider": "kvm", "qom-path": "/machine/unattached/device[0]", "stats": [{"name": "exits", "value": 5}, {"name": "irq_injections", "value": 2}]},` +
				`{"provider": "kvm", "qom-path": "/machine/unattached/device[1]", "stats": [{"name": "exits", "value": 7}]}]}`}
		case strings.Contains(line, "query-stats"):
			return []string{`{"return": [{"provider": "kvm", "stats": [{"name": "halt_wait_hist", "value": [1, 2]}]}]}`}
		}
		return []string{`{"error": {"class": "CommandNotFound", "desc": "no"}}`}
	})
	q, err := DialQMP(context.Background(), sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if tids, err := q.VCPUThreads(); err != nil || len(tids) != 2 || tids[0] != 11 || tids[1] != 12 {
		t.Errorf("VCPUThreads = %v, %v", tids, err)
	}
	st, err := q.KVMStats("exits", "irq_injections")
	if err != nil || st["exits"] != 12 || st["irq_injections"] != 2 {
		t.Errorf("KVMStats = %v, %v; want exits 12 (summed), irq_injections 2", st, err)
	}
	if _, err := q.KVMStats("halt_wait_hist"); !errors.Is(err, ErrQMP) {
		t.Errorf("a histogram read as a count: %v", err)
	}
}
