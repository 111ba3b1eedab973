package net

import (
	"bytes"
	"encoding/binary"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/hostos"
	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// inPrivateNetns runs fn on an OS thread with a fresh network namespace
// (the thread dies with it), so the test's TAP never touches the host's
// networking. fn reports failures with t.Errorf and returns.
func inPrivateNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root for a private network namespace and a TAP")
	}
	done := make(chan string)
	go func() {
		runtime.LockOSThread() // never unlocked: the namespace dies with the thread
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- err.Error()
			return
		}
		fn()
		done <- ""
	}()
	if skip := <-done; skip != "" {
		t.Skip("skipping: unshare(CLONE_NEWNET): " + skip)
	}
}

// TestRealTap runs the device over a real TAP in a private namespace: the
// fake driver resolves the namespace's address with ARP, then pings it
// with an echo request whose ICMP checksum is left to the host
// (NEEDS_CSUM); the replies arrive in receive buffers.
func TestRealTap(t *testing.T) {
	inPrivateNetns(t, func() {
		cfg := Config{Tap: "vnt0", MAC: MAC{0x02, 0, 0, 0, 0, 0x42}}
		dev, err := Open(cfg)
		if err != nil {
			t.Errorf("Open: %v", err)
			return
		}
		defer dev.Close()
		if err := ipUp("vnt0", [4]byte{10, 7, 0, 1}); err != nil {
			t.Errorf("configuring vnt0: %v", err)
			return
		}
		r := &rig{rec: &recorder{}, dev: dev, features: linuxFeatures}
		r.mem = virtiotest.NewMemory(t, memSize)
		if !r.activate(t) {
			return
		}
		rx, tx := r.rx(0), r.tx(0)
		var bufs []virtiotest.Buf
		for range 16 {
			b := rxBuf(rx, 1536)
			bufs = append(bufs, b)
			rx.AddChain(b)
		}
		r.kick(0)
		me, peer := [4]byte{10, 7, 0, 2}, [4]byte{10, 7, 0, 1}
		send := func(h header, f []byte) {
			tx.AddChain(putBytes(t, tx, hdrBytes(h)), putBytes(t, tx, f))
			r.kick(1)
		}
		// recv returns the next received frame that want accepts.
		recv := func(want func([]byte) bool) []byte {
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				id, n, ok := rx.NextUsed()
				if !ok {
					time.Sleep(time.Millisecond)
					continue
				}
				got := virtiotest.Bytes(t, r.mem, bufs[id%16].Addr, int(n))
				rx.AddChain(bufs[id%16])
				r.kick(0)
				if f := got[hdrLen:]; len(f) >= 42 && want(f) {
					return f
				}
			}
			t.Error("no matching frame within 10 s")
			return nil
		}
		mac := cfg.MAC[:]
		send(header{}, arpRequest(mac, me, peer))
		reply := recv(func(f []byte) bool {
			return binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 2
		})
		if reply == nil {
			return
		}
		echo := icmpEcho(mac, reply[6:12], me, peer, []byte("partial checksum"))
		binary.BigEndian.PutUint16(echo[36:], 0) // the host computes it
		send(header{flags: hdrNeedsCSUM, csumStart: 34, csumOffset: 2}, echo)
		if f := recv(func(f []byte) bool {
			return binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 1 && f[34] == 0
		}); f != nil && !bytes.HasSuffix(f, []byte("partial checksum")) {
			t.Errorf("echo reply % x", f)
		}
		if s := dev.Stats()[0]; s.TxPackets != 2 || s.RxPackets < 2 {
			t.Errorf("stats %+v", s)
		}
	})
}

// activate lays out the queues of r.dev in r.mem and activates it; it
// returns false (after t.Errorf) on failure.
func (r *rig) activate(t *testing.T) bool {
	for i, max := range r.dev.QueueMaxSizes() {
		base := uint64(i+1) * queueMem
		d := virtiotest.NewDriver(t, r.mem, qsize, base, base+queueMem)
		q, err := virtio.NewQueue(max)
		if err == nil {
			err = q.Configure(r.mem, d.Config(), r.features)
		}
		ev, err2 := hostos.NewEventFD()
		if err != nil || err2 != nil {
			t.Errorf("queue %d: %v %v", i, err, err2)
			return false
		}
		t.Cleanup(func() { ev.Close() })
		r.drv, r.queues, r.notify = append(r.drv, d), append(r.queues, q), append(r.notify, ev)
	}
	if err := r.dev.Activate(r.ctx()); err != nil {
		t.Errorf("Activate: %v", err)
		return false
	}
	return true
}

// ipUp gives the interface addr/24 and brings it up.
func ipUp(name string, addr [4]byte) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	for _, step := range []struct {
		req  uint
		addr []byte
	}{{unix.SIOCSIFADDR, addr[:]}, {unix.SIOCSIFNETMASK, []byte{255, 255, 255, 0}}} {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := ifr.SetInet4Addr(step.addr); err != nil {
			return err
		}
		if err := unix.IoctlIfreq(s, step.req, ifr); err != nil {
			return err
		}
	}
	ifr, _ := unix.NewIfreq(name)
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr)
}

func arpRequest(mac []byte, me, target [4]byte) []byte {
	f := make([]byte, 42)
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:], mac)
	copy(f[12:], []byte{0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1})
	copy(f[22:], mac)
	copy(f[28:], me[:])
	copy(f[38:], target[:])
	return f
}

func icmpEcho(src, dst []byte, from, to [4]byte, payload []byte) []byte {
	f := make([]byte, 42+len(payload))
	copy(f, dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 1
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(payload)))
	copy(ip[12:], from[:])
	copy(ip[16:], to[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	icmp := f[34:]
	icmp[0] = 8
	binary.BigEndian.PutUint16(icmp[4:], 0x4242)
	binary.BigEndian.PutUint16(icmp[6:], 1)
	copy(icmp[8:], payload)
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	return f
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
