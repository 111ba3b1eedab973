package harness

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These run /bin/sh as a stand-in VMM: no KVM needed.

func TestTimeToMarkerKillsGroup(t *testing.T) {
	// The shell starts a child in its process group that would outlive it;
	// the kill must reach both.
	argv := []string{"sh", "-c", `sleep 30 & printf 'noise MA'; sleep 0.05; printf 'RK'; wait`}
	var pid int
	after := func(p *Proc) error {
		if p.Exited() {
			t.Error("after ran once the process had ended")
		}
		pid = p.Pid()
		return nil
	}
	start := time.Now()
	d, err := TimeToMarker(context.Background(), "sh", argv, "MARK", 10*time.Second, after)
	if err != nil {
		t.Fatal(err)
	}
	if d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("time to marker %v, want about 50 ms", d)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %v: the process was not killed", time.Since(start))
	}
	if pid == 0 {
		t.Fatal("after did not run")
	}
	// Nothing of the process group runs any more (zombies waiting for a
	// reaper do not count).
	deadline := time.Now().Add(2 * time.Second)
	for liveInGroup(t, pid) {
		if time.Now().After(deadline) {
			t.Fatal("process group still running")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTimeToMarkerFailures(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	_, err := TimeToMarker(ctx, "sh", []string{"sh", "-c", "printf MARK; sleep 30"}, "MARK", 10*time.Second,
		func(*Proc) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("after's error: %v", err)
	}
	_, err = TimeToMarker(ctx, "sh", []string{"sh", "-c", "printf nothing; exec sleep 30"}, "MARK", 200*time.Millisecond, nil)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "nothing") {
		t.Errorf("timeout: %v, want ErrTimeout quoting the console", err)
	}
	if _, err := TimeToMarker(ctx, "x", []string{"/nonexistent/vmm"}, "!", time.Second, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing program: %v, want ErrNotExist", err)
	}
	// A process that prints the marker and exits at once still counts.
	if _, err := TimeToMarker(ctx, "sh", []string{"sh", "-c", "printf MARK"}, "MARK", 10*time.Second, nil); err != nil {
		t.Errorf("marker then exit: %v", err)
	}
}

// liveInGroup reports whether a process of group pgid is not a zombie.
func liveInGroup(t *testing.T, pgid int) bool {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}
