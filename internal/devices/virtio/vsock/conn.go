package vsock

import "time"

// Flow control and timing of a connection.
const (
	// bufAlloc is the receive buffer each connection advertises to the
	// guest: at most this many bytes from the guest wait for the host
	// program to read them.
	bufAlloc = 256 << 10
	// creditThreshold: when the guest's view of our free buffer falls
	// below this, a CREDIT_UPDATE tells it what has been forwarded since.
	creditThreshold = bufAlloc / 2
	// requestTimeout bounds the wait for the guest's answer to a
	// host-initiated connection.
	requestTimeout = 10 * time.Second
	// closeTimeout bounds a connection's orderly end: flushing data to a
	// host program that stopped reading, or the guest acknowledging a
	// shutdown of both directions.
	closeTimeout = 10 * time.Second
)

// connKey identifies a connection: its host-side port and guest-side port.
type connKey struct {
	local uint32 // the host side's port
	peer  uint32 // the guest side's port
}

// connState is where a connection is in its life.
type connState uint8

const (
	// stateHandshake: a host program connected to the listening socket;
	// its "CONNECT <port>\n" line has not arrived yet.
	stateHandshake connState = iota
	// stateRequest: host-initiated, REQUEST due or sent, waiting for the
	// guest's RESPONSE.
	stateRequest
	// stateRespond: guest-initiated and connected on the host, RESPONSE
	// due.
	stateRespond
	// stateEstablished: data flows.
	stateEstablished
	// stateClosing: the host socket is closed and an RST is due; the
	// connection leaves the table once it is sent.
	stateClosing
)

func (s connState) String() string {
	switch s {
	case stateHandshake:
		return "handshake"
	case stateRequest:
		return "request"
	case stateRespond:
		return "respond"
	case stateEstablished:
		return "established"
	case stateClosing:
		return "closing"
	}
	return "unknown"
}

// Packets a connection owes the guest, in order of precedence.
const (
	pendRST = 1 << iota
	pendResponse
	pendRequest
	pendShutdown
	pendCreditUpdate
)

// conn is one stream between a guest socket and a host Unix socket. It
// belongs to the muxer's goroutine.
type conn struct {
	fd      int // host socket, -1 once closed
	token   uint64
	key     connKey
	state   connState
	pending uint8

	// Host socket readiness, from edge-triggered epoll.
	readable bool // reading may not block
	hup      bool // the host program closed both directions
	eof      bool // read returned end of stream
	outArmed bool // EPOLLOUT is in the interest set
	wrShut   bool // the host socket's write side was shut down

	peerShut  uint32 // SHUTDOWN flags received from the guest
	shutFlags uint32 // SHUTDOWN flags due to or sent to the guest

	// Guest to host.
	fromGuest   uint32 // payload bytes received from the guest
	fwdCnt      uint32 // of those, written to the host socket
	lastFwdSent uint32 // fwdCnt as last told to the guest
	buf         txBuf  // received, not yet written

	// Host to guest.
	toGuest      uint32 // payload bytes sent to the guest
	peerBufAlloc uint32
	peerFwdCnt   uint32
	creditAsked  bool // a CREDIT_REQUEST is outstanding

	expiry  time.Time // zero: none
	queued  bool      // in the muxer's ready ring
	removed bool
}

// credit is how many bytes the guest can take now.
func (c *conn) credit() uint32 {
	inflight := c.toGuest - c.peerFwdCnt
	if inflight > c.peerBufAlloc {
		return 0 // nonsense from the guest: send nothing
	}
	return c.peerBufAlloc - inflight
}

// buffered is how many bytes from the guest wait for the host program.
func (c *conn) buffered() uint32 { return c.fromGuest - c.fwdCnt }

// guestNeedsCredit reports whether the guest's idea of our free buffer is
// low while we have forwarded more than it knows.
func (c *conn) guestNeedsCredit() bool {
	seenUsed := int64(c.fromGuest - c.lastFwdSent)
	return c.fwdCnt != c.lastFwdSent && bufAlloc-seenUsed < creditThreshold
}

// dataReady reports whether the host socket may have bytes for the guest
// and the connection may carry them (credit aside).
func (c *conn) dataReady() bool {
	return c.state == stateEstablished && c.readable && !c.eof && c.peerShut&shutdownRcv == 0
}

// wantsRx reports whether the connection has a packet for the guest.
func (c *conn) wantsRx() bool {
	if c.removed {
		return false
	}
	if c.pending != 0 {
		return true
	}
	return c.dataReady() && (c.credit() > 0 || !c.creditAsked)
}
