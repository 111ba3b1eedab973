package fcapi

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLogSwitchFollowsSet(t *testing.T) {
	var a, b bytes.Buffer
	sw := NewLogSwitch(slog.NewTextHandler(&a, nil))
	log := slog.New(sw).With("vm", "x").WithGroup("dev")
	log.Info("first", "n", 1)
	sw.Set(slog.NewTextHandler(&b, nil))
	log.Info("second", "n", 2)
	if !strings.Contains(a.String(), "msg=first vm=x dev.n=1") || strings.Contains(a.String(), "second") {
		t.Fatalf("before Set: %q", a.String())
	}
	if !strings.Contains(b.String(), "msg=second vm=x dev.n=2") {
		t.Fatalf("after Set: %q", b.String())
	}
	if sw.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("debug enabled on an info handler")
	}
}

func TestLogSwitchConcurrent(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	sw := NewLogSwitch(slog.NewTextHandler(&lockedBuffer{mu: &mu, b: &buf}, nil))
	log := slog.New(sw)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				log.Info("tick", "g", i)
				if i == 0 {
					sw.Set(slog.NewTextHandler(&lockedBuffer{mu: &mu, b: &buf}, nil))
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(buf.String(), "msg=tick"); n != 800 {
		t.Fatalf("%d records, want 800", n)
	}
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestPutLogger(t *testing.T) {
	var stderr bytes.Buffer
	sw := NewLogSwitch(slog.NewTextHandler(&stderr, nil))
	h := newHarness(t, func(o *Options) { o.Logs = sw })
	log := slog.New(sw)
	path := filepath.Join(h.dir, "vireo.log")

	h.fault("PUT", "/logger", `{"level": "Info"}`, "Logger error: no log_path given")
	h.fault("PUT", "/logger", `{"log_path": "`+path+`", "level": "Verbose"}`, "unknown variant `Verbose`")
	h.fault("PUT", "/logger", `{"log_path": "`+h.dir+`/no/such/dir/x.log"}`, "Logger error: ")
	h.fault("PUT", "/logger", `{"log_path": "`+path+`", "module": "api"}`, "unknown field `module`")
	h.ok("PUT", "/logger", `{"log_path": "`+path+`", "level": "info", "show_level": false}`)
	log.Info("to the file")
	log.Debug("filtered out")
	h.ok("PUT", "/logger", `{"level": "DEBUG", "show_level": true, "show_log_origin": true}`)
	log.Debug("debug now")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	if !strings.Contains(s, "msg=\"to the file\"") || strings.Contains(s, "filtered out") {
		t.Fatalf("log file: %q", s)
	}
	first, _, _ := strings.Cut(s, "\n")
	if strings.Contains(first, "level=") {
		t.Errorf("show_level false still shows the level: %q", first)
	}
	if !strings.Contains(s, "level=DEBUG") || !strings.Contains(s, "source=") || !strings.Contains(s, "debug now") {
		t.Errorf("second configuration not applied: %q", s)
	}
	if stderr.Len() != 0 {
		t.Errorf("logs still reach the old destination: %q", stderr.String())
	}
	var fc fullConfig
	h.get("/vm/config", &fc)
	if fc.Logger == nil || fc.Logger.LogPath != path || fc.Logger.Level != "DEBUG" || !fc.Logger.ShowLevel {
		t.Fatalf("logger config = %+v", fc.Logger)
	}
	h.s.Close()
	log.Warn("after close")
	if !strings.Contains(stderr.String(), "after close") {
		t.Errorf("after Close, logs should return to the first destination: %q", stderr.String())
	}
}
