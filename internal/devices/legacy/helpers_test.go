package legacy

import (
	"bytes"
	"sync"
)

// fakeLine records the level driven on an interrupt line.
type fakeLine struct {
	mu    sync.Mutex
	high  bool
	calls int
}

func (l *fakeLine) SetLevel(high bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.high = high
	l.calls++
	return nil
}

func (l *fakeLine) level() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.high
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func rd(d interface{ Read(uint64, []byte) }, off uint64) byte {
	var b [1]byte
	d.Read(off, b[:])
	return b[0]
}

func wr(d interface{ Write(uint64, []byte) }, off uint64, v byte) {
	d.Write(off, []byte{v})
}
