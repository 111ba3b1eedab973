package netguest

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestStreamAndHash: reads of any size continue the same stream, and the
// hash does not depend on how the bytes are cut.
func TestStreamAndHash(t *testing.T) {
	whole := make([]byte, 1000)
	NewStream(7).Read(whole)
	s, h := NewStream(7), NewHash()
	var parts []byte
	for _, n := range []int{1, 3, 8, 13, 0, 200, 775} {
		p := make([]byte, n)
		s.Read(p)
		h.Write(p[:n/2])
		h.Write(p[n/2:])
		parts = append(parts, p...)
	}
	if !bytes.Equal(parts, whole) {
		t.Fatal("the stream depends on read sizes")
	}
	one := NewHash()
	one.Write(whole)
	if h.Sum64() != one.Sum64() || one.Sum64() != Expected(1000, 7) || Expected(1000, 8) == Expected(1000, 7) {
		t.Errorf("hashes %x %x %x", h.Sum64(), one.Sum64(), Expected(1000, 7))
	}
}

// TestVnetperfOnHost builds vnetperf and runs it on the host's loopback
// against the Go stream: the two implementations agree byte for byte.
func TestVnetperfOnHost(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("skipping: no gcc")
	}
	bin, err := Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n, seed = 3<<20 + 5, 99
	re := regexp.MustCompile(`fnv=([0-9a-f]{16})`)
	sum := func(out []byte) uint64 {
		m := re.FindSubmatch(out)
		if m == nil {
			t.Fatalf("no hash in %q", out)
		}
		v, _ := strconv.ParseUint(string(m[1]), 16, 64)
		return v
	}

	// vnetperf sends; Go checks.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	done := make(chan []byte, 1)
	go func() {
		out, _ := exec.Command(bin, "send", "127.0.0.1", strconv.Itoa(port), strconv.Itoa(n), strconv.Itoa(seed)).CombinedOutput()
		done <- out
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	got := new(bytes.Buffer)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	got.ReadFrom(c)
	c.Close()
	want := make([]byte, n)
	NewStream(seed).Read(want)
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("vnetperf send: %d bytes differ from the Go stream", got.Len())
	}
	if out := <-done; sum(out) != Expected(n, seed) {
		t.Errorf("vnetperf send hash: %s", out)
	}

	// Go sends; vnetperf checks.
	rport := port + 1
	cmd := exec.Command(bin, "recv", strconv.Itoa(rport), strconv.Itoa(n), strconv.Itoa(seed))
	out := new(bytes.Buffer)
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	for range 100 {
		if conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", rport)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if conn == nil {
		t.Fatal(err)
	}
	conn.Write(want)
	conn.Close()
	if err := cmd.Wait(); err != nil || !bytes.Contains(out.Bytes(), []byte(" ok")) || sum(out.Bytes()) != Expected(n, seed) {
		t.Errorf("vnetperf recv: %v: %s", err, out)
	}
}
