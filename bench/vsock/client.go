package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// ErrProtocol reports an unexpected answer from the guest tool.
var ErrProtocol = errors.New("unexpected answer from the guest")

// channel opens a fresh stream to the guest's bulk server.
type channel interface {
	open() (io.ReadWriteCloser, error)
}

// vsockChannel reaches the guest through Vireo's hybrid vsock socket.
type vsockChannel struct {
	uds  string
	port uint32
}

func (c vsockChannel) open() (io.ReadWriteCloser, error) {
	conn, _, err := vsockDial(c.uds, c.port)
	return conn, err
}

// vsockDial connects with Firecracker's protocol and returns the
// connection (reads continue after the "OK <port>" line) and the time to
// that acknowledgement.
func vsockDial(uds string, port uint32) (io.ReadWriteCloser, time.Duration, error) {
	start := time.Now()
	c, err := net.Dial("unix", uds)
	if err != nil {
		return nil, 0, err
	}
	fmt.Fprintf(c, "CONNECT %d\n", port)
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "OK ") {
		c.Close()
		return nil, 0, fmt.Errorf("%w: CONNECT %d: %q, %v", ErrProtocol, port, line, err)
	}
	return &bufferedConn{Reader: r, Conn: c}, time.Since(start), nil
}

type bufferedConn struct {
	*bufio.Reader
	net.Conn
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.Reader.Read(p) }

// serialChannel is QEMU's virtio-serial port behind a chardev socket: one
// persistent stream.
type serialChannel struct{ conn net.Conn }

func (s serialChannel) open() (io.ReadWriteCloser, error) { return nopCloser{s.conn}, nil }

type nopCloser struct{ net.Conn }

func (nopCloser) Close() error { return nil }

func request(w io.Writer, op byte, n uint64) error {
	var b [9]byte
	b[0] = op
	binary.LittleEndian.PutUint64(b[1:], n)
	_, err := w.Write(b[:])
	return err
}

// hostToGuest sends n bytes and waits for the guest's count of them.
func hostToGuest(ch channel, n int, buf []byte) (time.Duration, error) {
	c, err := ch.open()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	if err := request(c, 'W', uint64(n)); err != nil {
		return 0, err
	}
	for left := n; left > 0; {
		k, err := c.Write(buf[:min(left, len(buf))])
		if err != nil {
			return 0, err
		}
		left -= k
	}
	var ack [8]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return 0, err
	}
	if got := binary.LittleEndian.Uint64(ack[:]); got != uint64(n) {
		return 0, fmt.Errorf("%w: guest counted %d bytes of %d", ErrProtocol, got, n)
	}
	return time.Since(start), nil
}

// guestToHost asks for n bytes and reads them.
func guestToHost(ch channel, n int, buf []byte) (time.Duration, error) {
	c, err := ch.open()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	if err := request(c, 'R', uint64(n)); err != nil {
		return 0, err
	}
	for left := n; left > 0; {
		k, err := c.Read(buf[:min(left, len(buf))])
		if err != nil {
			return 0, fmt.Errorf("after %d of %d bytes: %w", n-left, n, err)
		}
		left -= k
	}
	return time.Since(start), nil
}

// roundTrips measures rounds one-byte echoes on one stream and returns
// each round trip's time.
func roundTrips(ch channel, rounds int) ([]time.Duration, error) {
	c, err := ch.open()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var b [10]byte
	out := make([]time.Duration, 0, rounds)
	for i := range rounds {
		b[0] = 'E'
		binary.LittleEndian.PutUint64(b[1:9], 1)
		b[9] = byte(i)
		start := time.Now()
		if _, err := c.Write(b[:]); err != nil {
			return nil, err
		}
		var r [1]byte
		if _, err := io.ReadFull(c, r[:]); err != nil {
			return nil, err
		}
		if r[0] != byte(i) {
			return nil, fmt.Errorf("%w: echo %d came back as %d", ErrProtocol, i, r[0])
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}
