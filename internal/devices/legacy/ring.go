package legacy

// ring is a fixed-capacity FIFO of bytes. Its storage is allocated once;
// push, pop and the bulk copies never allocate.
type ring struct {
	buf  []byte
	head int // index of the oldest byte
	n    int // bytes held
}

func newRing(capacity int) ring { return ring{buf: make([]byte, capacity)} }

func (r *ring) len() int   { return r.n }
func (r *ring) free() int  { return len(r.buf) - r.n }
func (r *ring) full() bool { return r.n == len(r.buf) }
func (r *ring) reset()     { r.head, r.n = 0, 0 }

// push appends b and reports whether there was room for it.
func (r *ring) push(b byte) bool {
	if r.n == len(r.buf) {
		return false
	}
	r.buf[(r.head+r.n)%len(r.buf)] = b
	r.n++
	return true
}

// pop removes and returns the oldest byte; ok is false when r is empty.
func (r *ring) pop() (b byte, ok bool) {
	if r.n == 0 {
		return 0, false
	}
	b = r.buf[r.head]
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return b, true
}

// write appends as much of p as fits and returns the count appended.
func (r *ring) write(p []byte) int {
	total := 0
	for len(p) > 0 && r.n < len(r.buf) {
		tail := (r.head + r.n) % len(r.buf)
		end := len(r.buf)
		if tail < r.head {
			end = r.head
		}
		c := copy(r.buf[tail:end], p)
		r.n += c
		total += c
		p = p[c:]
	}
	return total
}

// read moves up to len(p) of the oldest bytes into p and returns the count.
func (r *ring) read(p []byte) int {
	total := 0
	for len(p) > 0 && r.n > 0 {
		end := r.head + r.n
		if end > len(r.buf) {
			end = len(r.buf)
		}
		c := copy(p, r.buf[r.head:end])
		r.head = (r.head + c) % len(r.buf)
		r.n -= c
		total += c
		p = p[c:]
	}
	if r.n == 0 {
		r.head = 0
	}
	return total
}

// bytes returns a copy of the held bytes, oldest first, without removing
// them. It allocates and is meant for snapshots only.
func (r *ring) bytes() []byte {
	out := make([]byte, r.n)
	for i := range out {
		out[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	return out
}

// load replaces the contents with p, which must fit.
func (r *ring) load(p []byte) bool {
	if len(p) > len(r.buf) {
		return false
	}
	r.reset()
	r.write(p)
	return true
}
