package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestWatchMarkerSplitAcrossReads(t *testing.T) {
	seen := make(chan time.Time, 1)
	var tail tailBuffer
	tail.max = 8
	r := iotest.OneByteReader(strings.NewReader("boot noise VIREO-BOOT-OK\nmore"))
	if err := watchMarker(r, []byte("VIREO-BOOT-OK"), seen, &tail); err != nil {
		t.Fatal(err)
	}
	select {
	case <-seen:
	default:
		t.Fatal("marker split over one-byte reads was not seen")
	}
	if got := tail.String(); got != "-OK\nmore" {
		t.Errorf("tail %q, want the last 8 bytes", got)
	}
}

func TestWatchMarkerAbsent(t *testing.T) {
	seen := make(chan time.Time, 1)
	err := watchMarker(strings.NewReader("VIREO-BOOT"), []byte("VIREO-BOOT-OK"), seen, &tailBuffer{max: 64})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 0 {
		t.Error("a partial marker counted as the marker")
	}
}

func TestWatchMarkerReadError(t *testing.T) {
	boom := errors.New("boom")
	err := watchMarker(iotest.ErrReader(boom), []byte("!"), make(chan time.Time, 1), &tailBuffer{max: 1})
	if !errors.Is(err, boom) {
		t.Errorf("err %v, want the read error", err)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := tailBuffer{max: 4}
	io.WriteString(&tb, "ab")
	io.WriteString(&tb, "cdef")
	if got := tb.String(); got != "cdef" {
		t.Errorf("tail %q, want %q", got, "cdef")
	}
}

// These run /bin/sh as a stand-in VMM: no KVM needed.

func shLaunch(script string, timeout time.Duration) launch {
	return launch{Name: "sh", Argv: []string{"/bin/sh", "-c", script}, Marker: []byte("MARK"), Timeout: timeout}
}

func TestLaunchMarkerThenKill(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	// The shell starts a child in its process group that would outlive it;
	// the kill must reach both.
	l := shLaunch(`sleep 30 & echo $! >&2; printf 'noise MA'; sleep 0.05; printf 'RK'; wait`, 10*time.Second)
	var pid int
	l.AfterMarker = func(p int) error { pid = p; return nil }
	start := time.Now()
	res, err := l.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.ToMarker < 50*time.Millisecond || res.ToMarker > 5*time.Second {
		t.Errorf("time to marker %v, want about 50 ms", res.ToMarker)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("run took %v: the process was not killed", time.Since(start))
	}
	if pid == 0 {
		t.Fatal("AfterMarker did not run")
	}
	// Nothing of the process group runs any more (zombies waiting for a
	// reaper do not count).
	deadline := time.Now().Add(2 * time.Second)
	for liveInGroup(t, pid) {
		if time.Now().After(deadline) {
			t.Fatal("process group still running after run")
		}
		time.Sleep(10 * time.Millisecond)
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

func TestLaunchExitsBeforeMarker(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	_, err := shLaunch(`echo bad config >&2; exit 3`, 10*time.Second).run(context.Background())
	if !errors.Is(err, ErrExited) && !errors.Is(err, ErrNoMarkerIO) {
		t.Fatalf("err %v, want ErrExited or ErrNoMarkerIO", err)
	}
	if !strings.Contains(err.Error(), "bad config") {
		t.Errorf("error %q does not quote stderr", err)
	}
}

func TestLaunchMarkerThenExit(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	// A process that prints the marker and exits at once still counts.
	if _, err := shLaunch(`printf MARK`, 10*time.Second).run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLaunchTimeout(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	start := time.Now()
	_, err := shLaunch(`printf nothing; exec sleep 30`, 200*time.Millisecond).run(context.Background())
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "nothing") {
		t.Errorf("error %q does not quote the console", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %v", d)
	}
}

func TestLaunchCancel(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := shLaunch(`exec sleep 30`, time.Minute).run(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's error", err)
	}
}

func TestLaunchMissingProgram(t *testing.T) {
	l := launch{Name: "x", Argv: []string{"/nonexistent/vmm"}, Marker: []byte("!"), Timeout: time.Second}
	if _, err := l.run(context.Background()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err %v, want ErrNotExist", err)
	}
}
