package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxOutput bounds how much console output a Proc keeps; older bytes are
// dropped (offsets stay absolute).
const maxOutput = 4 << 20

// Proc is one VMM process whose serial console is its stdout. The output
// is collected with the time each read delivered it, so that a marker can
// be timed to the read that completed it. Stdin is a pipe (an idle
// console unless Send writes to it); stderr keeps its last few KiB for
// error messages.
type Proc struct {
	Name    string    // for messages: "vireo", "qemu"
	Argv    []string  // program and arguments
	Started time.Time // just before exec

	cmd      *exec.Cmd
	stdin    *os.File
	exited   chan struct{} // closed when the process has been reaped
	waitErr  error         // valid after exited
	readDone chan struct{} // closed when stdout has ended
	stderr   tail
	killOnce sync.Once

	mu     sync.Mutex
	base   int64  // absolute offset of out[0]
	out    []byte // console output kept
	chunks []chunk
	notify chan struct{} // closed and replaced on every new output
}

// chunk records that the output up to end arrived at at.
type chunk struct {
	end int64
	at  time.Time
}

// Mark is where and when a marker appeared on the console.
type Mark struct {
	At  time.Time // when the read that completed the marker returned
	End int64     // the output offset just past the marker
}

// Start runs argv in its own process group, killed with this program if
// it dies first.
func Start(name string, argv []string) (*Proc, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("%s: empty command", name)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%s: stdin pipe: %w", name, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("%s: stdout pipe: %w", name, err)
	}
	p := &Proc{
		Name: name, Argv: argv, stdin: inW,
		exited: make(chan struct{}), readDone: make(chan struct{}), notify: make(chan struct{}),
	}
	p.stderr.max = 4 << 10
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = inR, outW, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A stray descendant outside the group may hold stderr open.
	p.cmd.WaitDelay = 2 * time.Second
	p.Started = time.Now()
	err = p.cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, argv[0], err)
	}
	go p.collect(outR)
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// collect reads the console until it ends.
func (p *Proc) collect(r *os.File) {
	defer close(p.readDone)
	defer r.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		now := time.Now()
		if n > 0 {
			p.mu.Lock()
			p.out = append(p.out, buf[:n]...)
			end := p.base + int64(len(p.out))
			p.chunks = append(p.chunks, chunk{end: end, at: now})
			if len(p.out) > maxOutput {
				drop := len(p.out) - maxOutput/2
				p.out = append(p.out[:0], p.out[drop:]...)
				p.base += int64(drop)
				i := 0
				for i < len(p.chunks) && p.chunks[i].end <= p.base {
					i++
				}
				p.chunks = append(p.chunks[:0], p.chunks[i:]...)
			}
			close(p.notify)
			p.notify = make(chan struct{})
			p.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// Len is the number of console bytes received so far.
func (p *Proc) Len() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.base + int64(len(p.out))
}

// WaitFor waits up to timeout for marker to appear in the console output
// at or after offset from.
func (p *Proc) WaitFor(ctx context.Context, marker string, from int64, timeout time.Duration) (Mark, error) {
	if marker == "" {
		return Mark{}, fmt.Errorf("%s: empty marker", p.Name)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		m, found := p.find(marker, from)
		notify := p.notify
		p.mu.Unlock()
		if found {
			return m, nil
		}
		select {
		case <-notify:
		case <-p.readDone:
			// Look once more: the last output may hold the marker.
			p.mu.Lock()
			m, found := p.find(marker, from)
			p.mu.Unlock()
			if found {
				return m, nil
			}
			// Let the process be reaped, so that its stderr is complete.
			select {
			case <-p.exited:
			case <-time.After(2 * time.Second):
			}
			return Mark{}, p.failure(fmt.Errorf("%w before %q appeared on the console", ErrExited, marker))
		case <-timer.C:
			return Mark{}, p.failure(fmt.Errorf("%w: %q did not appear on the console within %v", ErrTimeout, marker, timeout))
		case <-ctx.Done():
			return Mark{}, fmt.Errorf("%s: %w", p.Name, ctx.Err())
		}
	}
}

// find looks for marker in the output kept from offset from; p.mu is held.
func (p *Proc) find(marker string, from int64) (Mark, bool) {
	start := max(from-p.base, 0)
	if start > int64(len(p.out)) {
		return Mark{}, false
	}
	i := bytes.Index(p.out[start:], []byte(marker))
	if i < 0 {
		return Mark{}, false
	}
	end := p.base + start + int64(i) + int64(len(marker))
	return Mark{At: chunkTime(p.chunks, end), End: end}, true
}

// chunkTime is the arrival time of the chunk holding the byte before end.
func chunkTime(chunks []chunk, end int64) time.Time {
	for _, c := range chunks {
		if c.end >= end {
			return c.at
		}
	}
	return time.Time{}
}

// Send writes s to the process's stdin (the guest's console input).
func (p *Proc) Send(s string) error {
	if _, err := io.WriteString(p.stdin, s); err != nil {
		return fmt.Errorf("%s: console input: %w", p.Name, err)
	}
	return nil
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Kill kills the process group and reaps the process; it may be called
// more than once.
func (p *Proc) Kill() {
	p.killOnce.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		p.stdin.Close()
	})
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// failure adds the process's last output to err.
func (p *Proc) failure(err error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", p.Name, err)
	if p.Exited() && p.waitErr != nil {
		fmt.Fprintf(&b, " (%v)", p.waitErr)
	}
	if s := strings.TrimSpace(p.stderr.String()); s != "" {
		fmt.Fprintf(&b, "\n  stderr: %s", strings.ReplaceAll(s, "\n", "\n          "))
	}
	p.mu.Lock()
	last := p.out[max(len(p.out)-512, 0):]
	p.mu.Unlock()
	if s := strings.TrimSpace(string(last)); s != "" {
		fmt.Fprintf(&b, "\n  console (last bytes): %q", s)
	}
	return errorString{b.String(), err}
}

// errorString is an error with a longer message that still unwraps to
// the error it describes.
type errorString struct {
	msg string
	err error
}

func (e errorString) Error() string { return e.msg }
func (e errorString) Unwrap() error { return e.err }

// tail keeps the last max bytes written to it; safe for concurrent use.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
