package vsock

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/rtsyscall"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

// Limits of the connection table.
const (
	// maxConns bounds the connections (including host sockets still in
	// their CONNECT handshake). Each holds at most bufAlloc bytes of
	// buffered guest data.
	maxConns = 1024
	// rstQueueLen bounds the RSTs owed for packets that match no
	// connection; beyond it they are dropped (the guest times out).
	rstQueueLen = 256
	// maxIdleChunks bounds the buffer memory kept for reuse.
	maxIdleChunks = 256
	// maxEvents is how many epoll events one wait returns.
	maxEvents = 64
)

// Fixed epoll tokens; connections use tokens from firstConnToken up.
const (
	tokWake = iota + 1
	tokRX
	tokTX
	tokEvent
	tokListener
	firstConnToken = 16
)

// Queue indices.
const (
	rxQueue = iota
	txQueue
	eventQueue
	numQueues
)

// muxer moves packets between the guest's queues and host Unix sockets.
// Its loop runs on one goroutine; mu is held while it works (not while
// it waits) so that other goroutines can inspect or reset it.
type muxer struct {
	cid  uint64
	path string
	log  *slog.Logger
	now  func() time.Time

	queues [numQueues]*virtio.Queue
	chains [numQueues]*virtio.DescriptorChain
	notify [numQueues]*hostos.EventFD
	irq    virtio.Interrupt

	epfd   int
	events []unix.EpollEvent
	wake   *hostos.EventFD
	stop   atomic.Bool
	lis    *listener

	mu         sync.Mutex
	conns      map[connKey]*conn
	byToken    map[uint64]*conn
	localPorts map[uint32]*conn
	handshakes int // host sockets waiting for their CONNECT line
	nextToken  uint64
	lastLocal  uint32
	ready      ring
	rsts       [rstQueueLen]connKey
	rstHead    int
	rstLen     int
	resetEvent bool // a TRANSPORT_RESET event is due
	nextExpiry time.Time
	pool       pool
	stats      stats
	ctr        *counters // the device's, which outlive the muxer

	scratch [maxPayload]byte
	hdr     [hdrSize]byte
	line    [32]byte
}

// stats counts what the muxer dropped or refused, for tests and logs.
type stats struct {
	badChains     uint64 // malformed descriptor chains
	badPackets    uint64 // headers with impossible lengths, types or addresses
	rstsDropped   uint64 // RSTs lost to a full rstQueue
	creditAbuse   uint64 // data beyond the advertised credit
	refusedConns  uint64 // connections refused (table full, no host listener)
	unknownPacket uint64 // packets for no connection
}

// newMuxer builds the muxer for an activation; the epoll instance watches
// the wake eventfd, the queues' notify eventfds and the listener.
func newMuxer(cfg Config, lis *listener, ctx virtio.ActivateContext, log *slog.Logger) (_ *muxer, err error) {
	m := &muxer{
		cid:        cfg.CID,
		path:       cfg.UDSPath,
		log:        log,
		now:        time.Now,
		irq:        ctx.Interrupt,
		epfd:       -1,
		events:     make([]unix.EpollEvent, maxEvents),
		lis:        lis,
		conns:      make(map[connKey]*conn),
		byToken:    make(map[uint64]*conn),
		localPorts: make(map[uint32]*conn),
		nextToken:  firstConnToken,
		// A random start: a guest restored from a snapshot, or reset,
		// may still hold sockets connected to ports an earlier muxer
		// handed out; starting where it did would collide with them.
		lastLocal: 1<<30 | rand.Uint32N(1<<30),
		pool:      pool{max: maxIdleChunks},
		ctr:       new(counters),
	}
	for i := range numQueues {
		q := ctx.Queues[i]
		if !q.Ready() {
			continue
		}
		m.queues[i] = q
		m.chains[i] = q.NewChain()
		m.notify[i] = ctx.Notify[i]
	}
	defer func() {
		if err != nil {
			m.close()
		}
	}()
	if m.wake, err = hostos.NewEventFD(); err != nil {
		return nil, fmt.Errorf("vsock: %w", err)
	}
	if m.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("vsock: epoll: %w", err)
	}
	if err := m.watch(m.wake.FD(), tokWake, unix.EPOLLIN); err != nil {
		return nil, err
	}
	for i, tok := range []uint64{tokRX, tokTX, tokEvent} {
		if m.notify[i] != nil {
			if err := m.watch(m.notify[i].FD(), tok, unix.EPOLLIN); err != nil {
				return nil, err
			}
		}
	}
	if lis != nil {
		if err := m.watch(lis.fd, tokListener, unix.EPOLLIN|unix.EPOLLET); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// watch adds fd to the epoll set under token.
func (m *muxer) watch(fd int, token uint64, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(uint32(token)), Pad: int32(uint32(token >> 32))}
	if err := unix.EpollCtl(m.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("vsock: epoll add: %w", err)
	}
	return nil
}

// rewatch changes the events watched for fd.
func (m *muxer) rewatch(fd int, token uint64, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(uint32(token)), Pad: int32(uint32(token >> 32))}
	if err := unix.EpollCtl(m.epfd, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
		return fmt.Errorf("vsock: epoll modify: %w", err)
	}
	return nil
}

func eventToken(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// shutdown asks the loop to return; it is safe from any goroutine.
func (m *muxer) shutdown() {
	m.stop.Store(true)
	m.wake.Signal()
}

// run is the event loop. It returns nil when stopped and an error when a
// queue is unusable (the device then needs a reset).
func (m *muxer) run() error {
	// Look at the rings once: the driver may have queued buffers before
	// the device started.
	m.mu.Lock()
	err := m.work(true)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	for {
		n, err := rtsyscall.EpollWait(m.epfd, m.events, m.timeout())
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("vsock: epoll wait: %w", err)
		}
		if m.stop.Load() {
			return nil
		}
		m.mu.Lock()
		err = m.dispatch(m.events[:n])
		m.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// dispatch handles one batch of epoll events, then serves the queues.
func (m *muxer) dispatch(events []unix.EpollEvent) error {
	tx := false
	for i := range events {
		ev := &events[i]
		switch tok := eventToken(ev); tok {
		case tokWake:
			m.wake.Drain()
		case tokRX:
			m.notify[rxQueue].Drain()
		case tokTX:
			m.notify[txQueue].Drain()
			tx = true
		case tokEvent:
			m.notify[eventQueue].Drain()
		case tokListener:
			m.acceptAll()
		default:
			if c := m.byToken[tok]; c != nil {
				m.hostEvent(c, ev.Events)
			}
		}
	}
	return m.work(tx)
}

// work serves the TX queue (when notified), expires connections, then
// fills the RX and event queues and signals the guest.
func (m *muxer) work(tx bool) error {
	if tx {
		if err := m.processTX(); err != nil {
			return err
		}
	}
	m.expire()
	if err := m.processRX(); err != nil {
		return err
	}
	if err := m.processEvents(); err != nil {
		return err
	}
	for _, q := range m.queues {
		if q != nil {
			if err := m.irq.Used(q); err != nil {
				return err
			}
		}
	}
	return nil
}

// timeout is the epoll wait in milliseconds until the next expiry (-1:
// none).
func (m *muxer) timeout() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nextExpiry.IsZero() {
		return -1
	}
	d := m.nextExpiry.Sub(m.now())
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// setExpiry arms a connection's deadline.
func (m *muxer) setExpiry(c *conn, d time.Duration) {
	c.expiry = m.now().Add(d)
	if m.nextExpiry.IsZero() || c.expiry.Before(m.nextExpiry) {
		m.nextExpiry = c.expiry
	}
}

// expire resets the connections whose deadline has passed.
func (m *muxer) expire() {
	if m.nextExpiry.IsZero() {
		return
	}
	now := m.now()
	if now.Before(m.nextExpiry) {
		return
	}
	m.nextExpiry = time.Time{}
	for _, c := range m.byToken {
		if c.expiry.IsZero() {
			continue
		}
		if !now.Before(c.expiry) {
			c.expiry = time.Time{}
			m.log.Debug("vsock: connection timed out", "local_port", c.key.local, "peer_port", c.key.peer, "state", c.state)
			m.kill(c)
			continue
		}
		if m.nextExpiry.IsZero() || c.expiry.Before(m.nextExpiry) {
			m.nextExpiry = c.expiry
		}
	}
}

// transportReset drops every connection without telling the guest (its
// driver resets them all on the event) and queues a TRANSPORT_RESET event.
func (m *muxer) transportReset() {
	for _, c := range m.byToken {
		m.remove(c)
	}
	for _, c := range m.conns {
		m.remove(c)
	}
	m.ready.clear()
	m.rstHead, m.rstLen = 0, 0
	m.nextExpiry = time.Time{}
	m.resetEvent = true
}

// close releases every connection and the muxer's descriptors; the
// listener belongs to the device.
func (m *muxer) close() {
	if m.stats != (stats{}) {
		m.log.Debug("vsock: guest or host misbehaved during this activation", "stats", fmt.Sprintf("%+v", m.stats))
	}
	for _, c := range m.byToken {
		m.remove(c)
	}
	for _, c := range m.conns {
		m.remove(c)
	}
	if m.epfd >= 0 {
		unix.Close(m.epfd)
		m.epfd = -1
	}
	if m.wake != nil {
		m.wake.Close()
		m.wake = nil
	}
}

// ring is a FIFO of connections waiting to send to the guest. It grows
// by doubling and never shrinks, so steady traffic does not allocate.
type ring struct {
	buf  []*conn
	head int
	n    int
}

func (r *ring) len() int { return r.n }

func (r *ring) push(c *conn) {
	if r.n == len(r.buf) {
		nb := make([]*conn, max(16, 2*len(r.buf)))
		for i := range r.n {
			nb[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = c
	r.n++
}

func (r *ring) pop() *conn {
	c := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return c
}

func (r *ring) clear() {
	for r.n > 0 {
		r.pop().queued = false
	}
}
