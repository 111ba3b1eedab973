package harness

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestProcWaitFor(t *testing.T) {
	p, err := Start("sh", []string{"sh", "-c", `printf 'boot...'; sleep 0.05; printf 'MARK one'; read line; printf "got $line MARK"; sleep 30`})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	ctx := context.Background()
	m, err := p.WaitFor(ctx, "MARK", 0, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.End != int64(len("boot...MARK")) || m.At.Before(p.Started) {
		t.Errorf("first mark = %+v (started %v)", m, p.Started)
	}
	if err := p.Send("hello\n"); err != nil {
		t.Fatal(err)
	}
	m2, err := p.WaitFor(ctx, "MARK", m.End, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m2.End != p.Len() || m2.At.Before(m.At) {
		t.Errorf("second mark = %+v, output length %d", m2, p.Len())
	}
	_, err = p.WaitFor(ctx, "never", 0, 20*time.Millisecond)
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("missing marker: %v, want ErrTimeout", err)
	}
	p.Kill()
	p.Kill() // a second Kill is harmless
	if !p.Exited() {
		t.Error("not exited after Kill")
	}
}

func TestProcExitBeforeMarker(t *testing.T) {
	p, err := Start("sh", []string{"sh", "-c", "printf 'console text'; echo 'an error' >&2; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	_, err = p.WaitFor(context.Background(), "MARK", 0, 10*time.Second)
	if !errors.Is(err, ErrExited) {
		t.Fatalf("err = %v, want ErrExited", err)
	}
	for _, want := range []string{"an error", "console text"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	// A marker printed just before the exit is still found.
	q, err := Start("sh", []string{"sh", "-c", "printf 'last MARK'"})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Kill()
	if _, err := q.WaitFor(context.Background(), "MARK", 0, 10*time.Second); err != nil {
		t.Errorf("marker in the last output: %v", err)
	}
}

func TestProcCancel(t *testing.T) {
	p, err := Start("sleep", []string{"sleep", "30"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.WaitFor(ctx, "x", 0, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start("none", nil); err == nil {
		t.Error("Start with no command succeeded")
	}
	if _, err := Start("missing", []string{"/nonexistent/program"}); err == nil {
		t.Error("Start of a missing program succeeded")
	}
}

func TestChunkTime(t *testing.T) {
	t0 := time.Unix(100, 0)
	chunks := []chunk{{end: 5, at: t0}, {end: 9, at: t0.Add(time.Second)}, {end: 20, at: t0.Add(2 * time.Second)}}
	for end, want := range map[int64]time.Time{1: t0, 5: t0, 6: t0.Add(time.Second), 9: t0.Add(time.Second), 20: t0.Add(2 * time.Second), 21: {}} {
		if got := chunkTime(chunks, end); !got.Equal(want) {
			t.Errorf("chunkTime(%d) = %v, want %v", end, got, want)
		}
	}
}

func TestProcKeepsBoundedOutput(t *testing.T) {
	// More than maxOutput bytes, then a marker: found, at the right offset.
	p, err := Start("sh", []string{"sh", "-c", "head -c 6000000 /dev/zero; printf END; sleep 30"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	m, err := p.WaitFor(context.Background(), "END", 0, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.End != 6000003 {
		t.Errorf("End = %d, want 6000003", m.End)
	}
	p.mu.Lock()
	kept := len(p.out)
	p.mu.Unlock()
	if kept > maxOutput {
		t.Errorf("kept %d bytes, more than %d", kept, maxOutput)
	}
}
