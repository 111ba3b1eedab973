package vsock

import (
	"io"

	"golang.org/x/sys/unix"
)

// chunkSize is the unit of buffer memory for data the guest sent that the
// host program has not read yet.
const chunkSize = 16 << 10

// chunk is one piece of a txBuf: bytes [r, w) of b are pending.
type chunk struct {
	b    [chunkSize]byte
	r, w int
	next *chunk
}

// pool recycles chunks among all connections, so that steady traffic
// allocates nothing; it keeps at most max idle chunks.
type pool struct {
	free  *chunk
	nfree int
	max   int
}

func (p *pool) get() *chunk {
	c := p.free
	if c == nil {
		return &chunk{}
	}
	p.free, c.next = c.next, nil
	p.nfree--
	return c
}

func (p *pool) put(c *chunk) {
	if p.nfree >= p.max {
		return
	}
	c.r, c.w = 0, 0
	c.next, p.free = p.free, c
	p.nfree++
}

// txBuf is a FIFO of bytes waiting to be written to a host socket. Its
// size is bounded by the connection's flow control, not by itself.
type txBuf struct {
	head, tail *chunk
	n          int
}

// len is the number of bytes waiting.
func (t *txBuf) len() int { return t.n }

// readFrom appends exactly n bytes read from r (a descriptor chain).
func (t *txBuf) readFrom(p *pool, r io.Reader, n int) error {
	for n > 0 {
		if t.tail == nil || t.tail.w == chunkSize {
			c := p.get()
			if t.tail == nil {
				t.head = c
			} else {
				t.tail.next = c
			}
			t.tail = c
		}
		c := t.tail
		k, err := io.ReadFull(r, c.b[c.w:min(chunkSize, c.w+n)])
		c.w += k
		t.n += k
		n -= k
		if err != nil {
			return err
		}
	}
	return nil
}

// write appends b.
func (t *txBuf) write(p *pool, b []byte) {
	for len(b) > 0 {
		if t.tail == nil || t.tail.w == chunkSize {
			c := p.get()
			if t.tail == nil {
				t.head = c
			} else {
				t.tail.next = c
			}
			t.tail = c
		}
		c := t.tail
		k := copy(c.b[c.w:], b)
		c.w += k
		t.n += k
		b = b[k:]
	}
}

// flush writes as much as the socket takes; it returns the bytes written.
// A full socket (EAGAIN) is not an error.
func (t *txBuf) flush(p *pool, fd int) (int, error) {
	total := 0
	for t.head != nil {
		c := t.head
		if c.r < c.w {
			k, err := writeFD(fd, c.b[c.r:c.w])
			c.r += k
			t.n -= k
			total += k
			if err != nil {
				return total, err
			}
			if c.r < c.w {
				return total, nil // the socket is full
			}
		}
		t.head = c.next
		if t.head == nil {
			t.tail = nil
		}
		p.put(c)
	}
	return total, nil
}

// reset drops the pending bytes and returns the chunks to the pool.
func (t *txBuf) reset(p *pool) {
	for c := t.head; c != nil; {
		next := c.next
		p.put(c)
		c = next
	}
	*t = txBuf{}
}

// writeFD writes b to a non-blocking socket, retrying interrupted calls.
// A full socket returns what was written and no error.
func writeFD(fd int, b []byte) (int, error) {
	total := 0
	for len(b) > 0 {
		k, err := unix.Write(fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return total, nil
		case err != nil:
			return total, err
		case k <= 0:
			return total, nil
		}
		total += k
		b = b[k:]
	}
	return total, nil
}

// readFD reads from a non-blocking socket, retrying interrupted calls.
// It returns 0 and unix.EAGAIN when nothing is waiting, 0 and nil at the
// end of the stream.
func readFD(fd int, b []byte) (int, error) {
	for {
		k, err := unix.Read(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return k, nil
	}
}
