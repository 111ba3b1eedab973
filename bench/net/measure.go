package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/net/netguest"
)

// The guest's and the host's addresses on the TAP.
const (
	hostIP  = "10.77.0.1"
	guestIP = "10.77.0.2"
	tapName = "bnet0"
	prompt  = `~ # `
)

// sample is what one boot of one VMM measured.
type sample struct {
	G2H, H2G   float64 // TCP throughput, MB/s
	RTT        float64 // ping round trip, ms
	CPUPerGiB  float64 // VMM process CPU seconds per GiB moved (both directions)
	BootToLink float64 // seconds from exec to the guest's NET-UP, for context
}

var (
	pingAvg        = regexp.MustCompile(`round-trip min/avg/max = [0-9.]+/([0-9.]+)/[0-9.]+ ms`)
	vnetperfResult = regexp.MustCompile(`vnetperf: (sent|received) (\d+) bytes in ([0-9.]+) s \(([0-9.]+) MB/s\) fnv=([0-9a-f]{16})( ok| SHORT)?\r?\n`)
	errStream      = errors.New("stream check failed")
)

// measure boots one VMM and runs the three measurements in it.
func measure(ns *netns, s subject, o *options) (sample, error) {
	var r sample
	start := time.Now()
	v, err := startVM(s.name, ns.name, s.argv(o))
	if err != nil {
		return r, err
	}
	defer v.stop()
	if err := ns.waitLink(tapName, 30*time.Second); err != nil {
		return r, err
	}
	if err := ns.ip("addr", "add", hostIP+"/24", "dev", tapName); err != nil {
		return r, err
	}
	if err := ns.ip("link", "set", tapName, "up"); err != nil {
		return r, err
	}
	if _, err := v.expect("NET-UP", o.timeout); err != nil {
		return r, err
	}
	r.BootToLink = time.Since(start).Seconds()
	if _, err := v.expect(prompt, o.timeout); err != nil {
		return r, err
	}

	// Round trip: the host pings the guest (the first reply also fills
	// both ARP caches; it is not counted).
	if _, err := ns.exec("busybox", "ping", "-c", "1", "-W", "30", guestIP); err != nil {
		return r, fmt.Errorf("%s: first ping: %w", s.name, err)
	}
	out, err := ns.exec("busybox", "ping", "-c", strconv.Itoa(o.pings), "-i", "0.2", "-W", "10", guestIP)
	m := pingAvg.FindStringSubmatch(out)
	if err != nil || m == nil {
		return r, fmt.Errorf("%s: ping: %v: %s", s.name, err, out)
	}
	r.RTT, _ = strconv.ParseFloat(m[1], 64)

	cpu0, err := v.cpuSeconds()
	if err != nil {
		return r, err
	}
	if r.G2H, err = guestToHost(ns, v, o); err != nil {
		return r, err
	}
	if r.H2G, err = hostToGuest(ns, v, o); err != nil {
		return r, err
	}
	cpu1, err := v.cpuSeconds()
	if err != nil {
		return r, err
	}
	r.CPUPerGiB = (cpu1 - cpu0) / (2 * float64(o.bytes) / (1 << 30))
	v.send("reboot -f\n")
	select {
	case <-v.done:
	case <-time.After(30 * time.Second):
	}
	return r, nil
}

// guestToHost has the guest send o.bytes of a stream the host checks; it
// returns the rate the host saw, from the first byte to the end.
func guestToHost(ns *netns, v *vm, o *options) (float64, error) {
	var l net.Listener
	if err := ns.do(func() (err error) {
		l, err = net.Listen("tcp", hostIP+":5003")
		return err
	}); err != nil {
		return 0, err
	}
	defer l.Close()
	type result struct {
		secs float64
		err  error
	}
	res := make(chan result, 1)
	go func() {
		secs, err := receive(l, o.bytes, 1, o.timeout)
		res <- result{secs, err}
	}()
	if err := v.send(fmt.Sprintf("vnetperf send %s 5003 %d 1\n", hostIP, o.bytes)); err != nil {
		return 0, err
	}
	r := <-res
	if r.err != nil {
		return 0, fmt.Errorf("%s guest to host: %w", v.name, r.err)
	}
	if _, err := v.expect(vnetperfResult.String(), o.timeout); err != nil {
		return 0, err
	}
	if _, err := v.expect(prompt, o.timeout); err != nil {
		return 0, err
	}
	return float64(o.bytes) / r.secs / 1e6, nil
}

// receive accepts one connection and checks n bytes of the stream seed.
func receive(l net.Listener, n int64, seed uint64, timeout time.Duration) (float64, error) {
	l.(*net.TCPListener).SetDeadline(time.Now().Add(timeout))
	c, err := l.Accept()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	want := netguest.NewStream(seed)
	buf, exp := make([]byte, 256<<10), make([]byte, 256<<10)
	var got int64
	var start time.Time
	for {
		k, err := c.Read(buf)
		if k > 0 {
			if got == 0 {
				start = time.Now()
			}
			want.Read(exp[:k])
			if !bytes.Equal(buf[:k], exp[:k]) {
				return 0, fmt.Errorf("%w: bytes %d-%d differ", errStream, got, got+int64(k))
			}
			got += int64(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if got != n {
		return 0, fmt.Errorf("%w: %d bytes, want %d", errStream, got, n)
	}
	return time.Since(start).Seconds(), nil
}

// hostToGuest has the host send o.bytes to vnetperf in the guest; it
// returns the rate the guest reports.
func hostToGuest(ns *netns, v *vm, o *options) (float64, error) {
	if err := v.send(fmt.Sprintf("vnetperf recv 5004 %d 2\n", o.bytes)); err != nil {
		return 0, err
	}
	if _, err := v.expect("listening on 5004", o.timeout); err != nil {
		return 0, err
	}
	var c net.Conn
	if err := ns.do(func() (err error) {
		c, err = net.DialTimeout("tcp", guestIP+":5004", 30*time.Second)
		return err
	}); err != nil {
		return 0, fmt.Errorf("%s: connecting to the guest: %w", v.name, err)
	}
	sent := make(chan error, 1)
	go func() {
		c.SetDeadline(time.Now().Add(o.timeout))
		_, err := io.CopyN(c, netguest.NewStream(2), o.bytes)
		c.Close()
		sent <- err
	}()
	m, err := v.expect(vnetperfResult.String(), o.timeout)
	if err != nil {
		return 0, err
	}
	if err := <-sent; err != nil {
		return 0, fmt.Errorf("%s host to guest: %w", v.name, err)
	}
	if m[6] != " ok" || m[5] != fmt.Sprintf("%016x", netguest.Expected(o.bytes, 2)) {
		return 0, fmt.Errorf("%w: guest reports %q", errStream, m[0])
	}
	if _, err := v.expect(prompt, o.timeout); err != nil {
		return 0, err
	}
	mbs, _ := strconv.ParseFloat(m[4], 64)
	return mbs, nil
}
