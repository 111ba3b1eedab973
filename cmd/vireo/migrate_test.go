package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestIncomingFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // "" for accepted
	}{
		{[]string{"--incoming", "tcp:0.0.0.0:4444"}, ""},
		{[]string{"--incoming", "unix:/run/vm.sock", "--disk", "/d.img"}, ""},
		{[]string{"--incoming", "defer"}, ""},
		{[]string{"--incoming", "tcp:4444"}, `--incoming "tcp:4444": want tcp:HOST:PORT, unix:PATH or defer`},
		{[]string{"--incoming", "defer", "--memory", "256M"}, "--memory cannot be combined with --incoming"},
		{[]string{"--incoming", "defer", "--kernel", "k"}, "--kernel cannot be combined with --incoming"},
		{[]string{"--incoming", "defer", "--restore", "d"}, "--restore cannot be combined with --incoming"},
	} {
		f, err := parseRunFlags(c.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		err = incomingConfig(f)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

func TestMigrateUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "migrate needs --qmp and one target URI"},
		{[]string{"--qmp", "unix:/x"}, "migrate needs --qmp and one target URI"},
		{[]string{"--qmp", "unix:/x", "exec:cat"}, `target "exec:cat": want tcp:HOST:PORT or unix:PATH`},
		{[]string{"--qmp", "unix:/x", "--max-bandwidth", "lots", "tcp:h:1"}, `--max-bandwidth "lots"`},
		{[]string{"--qmp", "unix:/x", "--downtime-limit", "5", "tcp:h:1"}, "invalid value"},
	} {
		var stderr bytes.Buffer
		if code := run(append([]string{"migrate"}, c.args...), nil, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
	var out bytes.Buffer
	if code := run([]string{"migrate", "--help"}, nil, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "-keep-source") {
		t.Errorf("--help: exit %d: %s", code, out.String())
	}
	var stderr bytes.Buffer
	code := run([]string{"migrate", "--qmp", "unix:/nonexistent/qmp.sock", "tcp:127.0.0.1:1"}, nil, io.Discard, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "connecting to QMP") || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("no QMP socket: exit %d, %q", code, stderr.String())
	}
}

func TestParseBandwidth(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1000": 1000, "64K": 64 << 10, "10M": 10 << 20, "1G": 1 << 30, "2MiB": 2 << 20} {
		if got, err := parseBandwidth(in); err != nil || got != want {
			t.Errorf("parseBandwidth(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseBandwidth("fast"); err == nil {
		t.Error("parseBandwidth(fast) succeeded")
	}
}

// Without a terminal the progress is plain lines: one per pass, and no
// more than one a second.
func TestProgressPlain(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b)
	st := migrateStatus{Status: "active"}
	st.RAM.Total, st.RAM.Remaining, st.RAM.Transferred, st.RAM.Mbps = 100<<20, 75<<20, 25<<20, 800
	p.show(st)
	p.show(st) // same pass, within a second: nothing new
	st.RAM.DirtySyncCount = 1
	p.show(st)
	p.done()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], " 25.0% pass 1, 26.2 MB sent, 100 MB/s") || !strings.Contains(lines[1], "100.0% pass 2") {
		t.Errorf("progress lines:\n%s", b.String())
	}
	if strings.Contains(b.String(), "\r") {
		t.Error("carriage return without a terminal")
	}
}
