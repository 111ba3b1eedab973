package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// QMP is a plain, synchronous QMP client: one command at a time, written
// as one line, its reply read line by line (QMP servers end every message
// with CRLF). Events that arrive meanwhile are kept in Events. The same
// code talks to QEMU and to Vireo, so it is never the difference between
// them.
type QMP struct {
	conn net.Conn
	r    *bufio.Reader
	// Events are the events received so far, raw.
	Events []json.RawMessage
}

// DialQMP connects to a QMP Unix socket, retrying while the VMM starts
// (until timeout), reads the greeting and negotiates capabilities.
func DialQMP(ctx context.Context, path string, timeout time.Duration) (*QMP, error) {
	deadline := time.Now().Add(timeout)
	var d net.Dialer
	var conn net.Conn
	for {
		var err error
		if conn, err = d.DialContext(ctx, "unix", path); err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: connect %s: %w", ErrQMP, path, ctx.Err())
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: connect %s: %w", ErrQMP, path, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	q := &QMP{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	conn.SetReadDeadline(time.Now().Add(timeout))
	line, err := q.readLine()
	if err == nil && !bytes.HasPrefix(line, []byte(`{"QMP"`)) {
		err = fmt.Errorf("%w: %s: no greeting: %.80q", ErrQMP, path, line)
	}
	conn.SetReadDeadline(time.Time{})
	if err == nil {
		_, err = q.Call("qmp_capabilities", nil)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

// Call runs one command and returns its "return" member.
func (q *QMP) Call(cmd string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrQMP, cmd, err)
	}
	line, err := q.RoundTrip(append(b, '\n'))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	var reply struct {
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
	}
	if err := json.Unmarshal(line, &reply); err != nil {
		return nil, fmt.Errorf("%w: %s: reply: %w", ErrQMP, cmd, err)
	}
	if reply.Error != nil {
		return nil, fmt.Errorf("%w: %s: %s: %s", ErrQMP, cmd, reply.Error.Class, reply.Error.Desc)
	}
	return reply.Return, nil
}

// RoundTrip writes one encoded command (newline included) and returns
// the raw reply line (a "return" or an "error" message), keeping any
// events that come first. The line is valid until the next call.
func (q *QMP) RoundTrip(req []byte) ([]byte, error) {
	if _, err := q.conn.Write(req); err != nil {
		return nil, fmt.Errorf("%w: write: %w", ErrQMP, err)
	}
	return q.readReply()
}

// readReply reads messages until a reply, keeping the events before it.
func (q *QMP) readReply() ([]byte, error) {
	for {
		line, err := q.readLine()
		if err != nil {
			return nil, err
		}
		if isReply(line) {
			return line, nil
		}
		q.Events = append(q.Events, bytes.Clone(line))
	}
}

// readLine reads one message line without its line ending.
func (q *QMP) readLine() ([]byte, error) {
	line, err := q.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// A message longer than the buffer: gather it.
		long := bytes.Clone(line)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = q.r.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read: %w", ErrQMP, err)
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

// isReply reports whether a message is a command's reply rather than an
// event: QEMU and Vireo both start replies with "return" or "error" (the
// common case, checked first), and a reply has no "event" member.
func isReply(line []byte) bool {
	if bytes.HasPrefix(line, []byte(`{"return"`)) || bytes.HasPrefix(line, []byte(`{"error"`)) {
		return true
	}
	var m struct {
		Event *string `json:"event"`
	}
	if json.Unmarshal(line, &m) != nil {
		return true // not an event; the caller reports what it is
	}
	return m.Event == nil
}

// Close ends the session.
func (q *QMP) Close() error { return q.conn.Close() }

// VCPUThreads returns the host thread ids of the VMM's vCPUs
// (query-cpus-fast).
func (q *QMP) VCPUThreads() ([]int, error) {
	ret, err := q.Call("query-cpus-fast", nil)
	if err != nil {
		return nil, err
	}
	var cpus []struct {
		ThreadID int `json:"thread-id"`
	}
	if err := json.Unmarshal(ret, &cpus); err != nil || len(cpus) == 0 {
		return nil, fmt.Errorf("%w: query-cpus-fast: %.200s", ErrQMP, ret)
	}
	tids := make([]int, len(cpus))
	for i, c := range cpus {
		tids[i] = c.ThreadID
	}
	return tids, nil
}

// KVMStats reads KVM's statistics of the vCPUs (query-stats, QEMU 7.1
// and later, and Vireo) and returns each named one summed over the
// vCPUs. KVM keeps them in the kernel, so they count the same things
// whichever VMM runs the guest: exits, emulated instructions, injected
// interrupts.
func (q *QMP) KVMStats(names ...string) (map[string]uint64, error) {
	ret, err := q.Call("query-stats", map[string]any{
		"target":    "vcpu",
		"providers": []any{map[string]any{"provider": "kvm", "names": names}},
	})
	if err != nil {
		return nil, err
	}
	var res []struct {
		Stats []struct {
			Name  string          `json:"name"`
			Value json.RawMessage `json:"value"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(ret, &res); err != nil {
		return nil, fmt.Errorf("%w: query-stats: %w", ErrQMP, err)
	}
	out := make(map[string]uint64, len(names))
	for _, r := range res {
		for _, st := range r.Stats {
			var v uint64
			if err := json.Unmarshal(st.Value, &v); err != nil {
				return nil, fmt.Errorf("%w: query-stats: %s is not a count: %.40s", ErrQMP, st.Name, st.Value)
			}
			out[st.Name] += v
		}
	}
	return out, nil
}
