package harness

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzQMPReply feeds arbitrary server output to the QMP client's reply
// reading: it must return one reply line or an error, never panic.
func FuzzQMPReply(f *testing.F) {
	f.Add([]byte(`{"return": {"status": "running", "singlestep": false, "running": true}}` + "\r\n"))
	f.Add([]byte(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}` + "\r\n" + `{"return": {}}` + "\r\n"))
	f.Add([]byte(`{"error": {"class": "GenericError", "desc": "x"}}` + "\n"))
	f.Add([]byte("{\"event\": \"X\"}\n\n\r\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		// A small buffer, so that long lines take the gathering path.
		q := &QMP{r: bufio.NewReaderSize(bytes.NewReader(out), 16)}
		line, err := q.readReply()
		if err == nil && (!isReply(line) || bytes.ContainsAny(line, "\n")) {
			t.Fatalf("readReply returned %q, not one reply line", line)
		}
		for _, ev := range q.Events {
			if isReply(ev) {
				t.Fatalf("reply %q kept as an event", ev)
			}
		}
	})
}
