package console

// buffer is a fixed-capacity byte queue: bytes are appended at the end
// (room, commit) and taken from the front (data, consume). It never grows.
type buffer struct {
	b    []byte
	r, w int
}

func newBuffer(n int) buffer { return buffer{b: make([]byte, n)} }

// len is the number of queued bytes.
func (x *buffer) len() int { return x.w - x.r }

// data returns the queued bytes.
func (x *buffer) data() []byte { return x.b[x.r:x.w] }

// consume drops the first n queued bytes.
func (x *buffer) consume(n int) {
	x.r += n
	if x.r >= x.w {
		x.r, x.w = 0, 0
	}
}

// room returns the free space after the queued bytes, moving them to the
// front first; fill it and call commit.
func (x *buffer) room() []byte {
	if x.r > 0 {
		x.w = copy(x.b, x.b[x.r:x.w])
		x.r = 0
	}
	return x.b[x.w:]
}

// commit appends n bytes written into room.
func (x *buffer) commit(n int) { x.w += n }

// clear empties the buffer.
func (x *buffer) clear() { x.r, x.w = 0, 0 }
