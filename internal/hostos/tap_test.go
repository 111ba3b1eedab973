package hostos

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inPrivateNetns runs fn on a goroutine whose OS thread has its own,
// fresh network namespace, so TAP tests never touch the host's
// networking. The thread stays locked and dies with the goroutine, taking
// the namespace along. fn reports failures with t.Errorf and returns.
func inPrivateNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: TAP tests need root (CAP_NET_ADMIN) for a private network namespace")
	}
	if _, err := os.Stat(tunDevice); err != nil {
		t.Skipf("skipping: %v", err)
	}
	done := make(chan string)
	go func() {
		runtime.LockOSThread() // never unlocked: the namespace dies with the thread
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- "unshare(CLONE_NEWNET): " + err.Error()
			return
		}
		fn()
		done <- ""
	}()
	if skip := <-done; skip != "" {
		t.Skip("skipping: " + skip)
	}
}

func TestOpenTapValidates(t *testing.T) {
	for _, name := range []string{"", "a-very-long-interface-name", "a/b", "a b", "..", "x:1"} {
		if _, err := OpenTap(name, 1); !errors.Is(err, ErrTapName) {
			t.Errorf("OpenTap(%q) = %v, want ErrTapName", name, err)
		}
	}
	for _, q := range []int{0, -1, MaxTapQueues + 1} {
		if _, err := OpenTap("tap0", q); !errors.Is(err, ErrTapQueues) {
			t.Errorf("OpenTap(tap0, %d) = %v, want ErrTapQueues", q, err)
		}
	}
}

func TestTapCreatedIsRemoved(t *testing.T) {
	inPrivateNetns(t, func() {
		tap, err := OpenTap("vireo%d", 1)
		if err != nil {
			t.Errorf("OpenTap: %v", err)
			return
		}
		name := tap.Name()
		if name != "vireo0" || !tap.Created() || tap.Queues() != 1 || tap.FD(0) < 0 || tap.FD(1) != -1 {
			t.Errorf("name %q created %v queues %d fd %d", name, tap.Created(), tap.Queues(), tap.FD(0))
		}
		if !interfaceExists(name) {
			t.Errorf("%s does not exist after OpenTap", name)
		}
		if _, err := OpenTap(name, 1); !errors.Is(err, ErrTapOpen) {
			t.Errorf("second open of a single-queue TAP = %v, want ErrTapOpen (busy)", err)
		}
		if err := tap.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := tap.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if interfaceExists(name) {
			t.Errorf("%s still exists after Close", name)
		}
		if err := tap.SetOffload(0); !errors.Is(err, ErrTapClosed) {
			t.Errorf("SetOffload after Close = %v", err)
		}
	})
}

func TestPersistentTapSurvives(t *testing.T) {
	inPrivateNetns(t, func() {
		// Make a persistent multi-queue TAP as `ip tuntap add multi_queue` would.
		fd, _, err := openTapQueue("ptap", unix.IFF_TAP|unix.IFF_NO_PI|unix.IFF_MULTI_QUEUE)
		if err != nil {
			t.Errorf("creating: %v", err)
			return
		}
		if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
			t.Errorf("TUNSETPERSIST: %v", err)
		}
		unix.Close(fd)

		if _, err := OpenTap("ptap", 1); !errors.Is(err, ErrTapOpen) {
			t.Errorf("single-queue open of a multi-queue TAP = %v, want ErrTapOpen", err)
		}
		tap, err := OpenTap("ptap", 3)
		if err != nil {
			t.Errorf("OpenTap: %v", err)
			return
		}
		if tap.Created() {
			t.Error("an existing TAP reported as created")
		}
		for _, step := range []struct {
			q  int
			on bool
		}{{2, false}, {1, false}, {1, false}, {1, true}, {2, true}} {
			if err := tap.SetQueueEnabled(step.q, step.on); err != nil {
				t.Errorf("SetQueueEnabled(%d, %v): %v", step.q, step.on, err)
			}
			if tap.QueueEnabled(step.q) != step.on {
				t.Errorf("queue %d enabled = %v", step.q, !step.on)
			}
		}
		if err := tap.SetQueueEnabled(3, true); !errors.Is(err, ErrTapQueues) {
			t.Errorf("SetQueueEnabled(3) = %v", err)
		}
		tap.Close()
		if !interfaceExists("ptap") {
			t.Error("the persistent TAP was removed by Close")
		}
		fd, _, err = openTapQueue("ptap", unix.IFF_TAP|unix.IFF_NO_PI|unix.IFF_MULTI_QUEUE)
		if err == nil {
			unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 0)
			unix.Close(fd)
		}
	})
}

// TestTapVnetHeaderPing brings a TAP up with an address and exchanges
// ARP and ICMP with the namespace's own stack through the descriptor,
// each packet preceded by a 12-byte virtio-net header.
func TestTapVnetHeaderPing(t *testing.T) {
	inPrivateNetns(t, func() {
		tap, err := OpenTap("vt0", 1)
		if err != nil {
			t.Errorf("OpenTap: %v", err)
			return
		}
		defer tap.Close()
		if err := tap.SetVnetHdrSize(12); err != nil {
			t.Errorf("SetVnetHdrSize: %v", err)
			return
		}
		if err := tap.SetOffload(TapOffloadCSUM | TapOffloadTSO4 | TapOffloadTSO6); err != nil {
			t.Errorf("SetOffload: %v", err)
			return
		}
		if err := configureIPv4("vt0", [4]byte{10, 9, 0, 1}); err != nil {
			t.Errorf("configuring vt0: %v", err)
			return
		}
		fd := tap.FD(0)
		mac := []byte{0x02, 0, 0, 0, 0, 0x42}
		me, peer := [4]byte{10, 9, 0, 2}, [4]byte{10, 9, 0, 1}
		if err := writeFrame(fd, arpRequest(mac, me, peer)); err != nil {
			t.Errorf("writing ARP request: %v", err)
			return
		}
		hdr, reply := readFrame(t, fd, func(f []byte) bool {
			return binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 2
		})
		if reply == nil {
			return
		}
		if !bytes.Equal(reply[0:6], mac) || !bytes.Equal(reply[28:32], peer[:]) {
			t.Errorf("ARP reply % x", reply)
		}
		if hdr[10] != 0 || hdr[11] != 0 {
			t.Logf("num_buffers bytes % x left as is", hdr[10:12])
		}
		peerMAC := reply[6:12]
		if err := writeFrame(fd, icmpEcho(mac, peerMAC, me, peer, []byte("vireo tap test"))); err != nil {
			t.Errorf("writing echo request: %v", err)
			return
		}
		_, echo := readFrame(t, fd, func(f []byte) bool {
			return len(f) > 34 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 1 && f[34] == 0
		})
		if echo != nil && !bytes.HasSuffix(echo, []byte("vireo tap test")) {
			t.Errorf("echo reply % x", echo)
		}
	})
}

// configureIPv4 gives the interface addr/24 and brings it up, with
// ioctls on a socket of the calling thread's namespace.
func configureIPv4(name string, addr [4]byte) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := ifr.SetInet4Addr(addr[:]); err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCSIFADDR, ifr); err != nil {
		return err
	}
	ifr, _ = unix.NewIfreq(name)
	ifr.SetInet4Addr([]byte{255, 255, 255, 0})
	if err := unix.IoctlIfreq(s, unix.SIOCSIFNETMASK, ifr); err != nil {
		return err
	}
	ifr, _ = unix.NewIfreq(name)
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr)
}

// writeFrame writes an Ethernet frame after an all-zero virtio-net header.
func writeFrame(fd int, frame []byte) error {
	_, err := unix.Write(fd, append(make([]byte, 12), frame...))
	return err
}

// readFrame reads frames until want accepts one (or 5 s pass) and returns
// its header and frame.
func readFrame(t *testing.T, fd int, want func([]byte) bool) ([]byte, []byte) {
	t.Helper()
	buf := make([]byte, 65536)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			unix.Poll(pfd, 100)
			continue
		}
		if err != nil {
			t.Errorf("reading the TAP: %v", err)
			return nil, nil
		}
		if n >= 12+14+28 && want(buf[12:n]) {
			return buf[:12], buf[12:n]
		}
	}
	t.Error("no matching frame from the TAP within 5 s")
	return nil, nil
}

func arpRequest(mac []byte, me, target [4]byte) []byte {
	f := make([]byte, 42)
	copy(f[0:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:], mac)
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	binary.BigEndian.PutUint16(f[14:], 1)      // Ethernet
	binary.BigEndian.PutUint16(f[16:], 0x0800) // IPv4
	f[18], f[19] = 6, 4
	binary.BigEndian.PutUint16(f[20:], 1) // request
	copy(f[22:], mac)
	copy(f[28:], me[:])
	copy(f[38:], target[:])
	return f
}

func icmpEcho(src, dst []byte, from, to [4]byte, payload []byte) []byte {
	f := make([]byte, 14+20+8+len(payload))
	copy(f[0:], dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8], ip[9] = 64, 1
	copy(ip[12:], from[:])
	copy(ip[16:], to[:])
	binary.BigEndian.PutUint16(ip[10:], inetChecksum(ip))
	icmp := f[34:]
	icmp[0] = 8 // echo request
	binary.BigEndian.PutUint16(icmp[4:], 0x1234)
	binary.BigEndian.PutUint16(icmp[6:], 1)
	copy(icmp[8:], payload)
	binary.BigEndian.PutUint16(icmp[2:], inetChecksum(icmp))
	return f
}

func inetChecksum(b []byte) uint16 {
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
