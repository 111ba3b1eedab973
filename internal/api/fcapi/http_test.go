package fcapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve starts h's server on a Unix socket and returns an HTTP client
// for it and the socket path.
func serve(t *testing.T, h *harness) (*http.Client, string) {
	t.Helper()
	// Socket paths are limited to 108 bytes: keep this one short.
	dir, err := os.MkdirTemp("", "fcapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.s.Serve(l) }()
	t.Cleanup(func() {
		h.s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			MaxIdleConnsPerHost: 100,
		},
	}
	t.Cleanup(c.CloseIdleConnections)
	return c, sock
}

func request(t *testing.T, c *http.Client, method, path, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestHTTPRoundTrip(t *testing.T) {
	h := newHarness(t)
	c, sock := serve(t, h)
	st, hdr, body := request(t, c, "GET", "/", "")
	if st != 200 || hdr.Get("Content-Type") != "application/json" || !strings.Contains(body, `"state":"Not started"`) {
		t.Fatalf("GET / = %d %v %s", st, hdr, body)
	}
	st, _, body = request(t, c, "PUT", "/machine-config", `{"vcpu_count": 2, "mem_size_mib": 256}`)
	if st != 204 || body != "" {
		t.Fatalf("PUT = %d %q", st, body)
	}
	st, hdr, body = request(t, c, "PUT", "/machine-config", `{"vcpu_count": 2}`)
	if st != 400 || hdr.Get("Content-Type") != "application/json" || !strings.Contains(faultMessage(t, body), "missing field `mem_size_mib`") {
		t.Fatalf("bad PUT = %d %s", st, body)
	}
	st, _, body = request(t, c, "POST", "/machine-config", `{}`)
	if st != 400 || !strings.Contains(body, "Invalid request method and/or path") {
		t.Fatalf("POST = %d %s", st, body)
	}
	// Close stops serving and removes the socket file.
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket still there after Close: %v", err)
	}
}

func TestHTTPBodyLimit(t *testing.T) {
	h := newHarness(t)
	c, sock := serve(t, h)
	big := `{"kernel_image_path": "` + strings.Repeat("a", DefaultMaxBody) + `"}`
	st, _, body := request(t, c, "PUT", "/boot-source", big)
	if st != 400 || !strings.Contains(faultMessage(t, body), fmt.Sprintf("Request payload with size %d is larger than the limit of 51200", len(big))) {
		t.Fatalf("big body = %d %s", st, body)
	}
	// A chunked body of unknown length is cut off at the limit.
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /boot-source HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := strings.Repeat("b", 8192)
	go func() {
		for range 10 {
			if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
				return
			}
		}
		fmt.Fprintf(conn, "0\r\n\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(faultMessage(t, string(b)), "larger than the limit of 51200") {
		t.Fatalf("chunked big body = %d %s", resp.StatusCode, b)
	}
	// Exactly the limit is fine (and fails later, on its content).
	exact := `{"kernel_image_path": "` + strings.Repeat("a", DefaultMaxBody-25) + `"}`
	if len(exact) != DefaultMaxBody {
		t.Fatalf("test body is %d bytes", len(exact))
	}
	st, _, body = request(t, c, "PUT", "/boot-source", exact)
	if st != 400 || !strings.Contains(body, "Boot source error") {
		t.Fatalf("body at the limit = %d %s", st, body)
	}
}

func TestHTTPConcurrentClients(t *testing.T) {
	h := newHarness(t)
	c, _ := serve(t, h)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var method, path, body string
			switch i % 4 {
			case 0:
				method, path = "GET", "/"
			case 1:
				method, path, body = "PUT", "/machine-config", fmt.Sprintf(`{"vcpu_count": %d, "mem_size_mib": 128}`, 1+i%2)
			case 2:
				method, path = "GET", "/vm/config"
			case 3:
				method, path, body = "PATCH", "/machine-config", `{"bad": 1}`
			}
			req, _ := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
			resp, err := c.Do(req)
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := map[int]int{0: 200, 1: 204, 2: 200, 3: 400}[i%4]
			if err != nil || resp.StatusCode != want {
				errs <- fmt.Errorf("%s %s: %d %s %v, want %d", method, path, resp.StatusCode, b, err, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var mc machineConfig
	h.get("/machine-config", &mc)
	if mc.VCPUCount != 1 && mc.VCPUCount != 2 {
		t.Fatalf("machine config after the storm: %+v", mc)
	}
}

func TestHTTPClientDisconnects(t *testing.T) {
	h := newHarness(t)
	c, sock := serve(t, h)
	// Headers promise a body that never fully arrives.
	for _, partial := range []string{
		"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\n{\"vcpu_count\": 2,",
		"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Le",
		"GET / HTTP/1.1\r\n",
	} {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, partial)
		conn.Close()
	}
	// A client that sends a whole request and leaves before the answer.
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 41\r\n\r\n{\"vcpu_count\": 4, \"mem_size_mib\": 128}   ")
	conn.Close()

	// The server keeps serving, and no partial body was applied.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var mc machineConfig
		st, _, body := request(t, c, "GET", "/machine-config", "")
		if st != 200 {
			t.Fatalf("GET after disconnects = %d %s", st, body)
		}
		if err := json.Unmarshal([]byte(body), &mc); err != nil {
			t.Fatal(err)
		}
		if mc.VCPUCount == 2 {
			t.Fatalf("a partial body was applied: %+v", mc)
		}
		if mc.VCPUCount == 4 || time.Now().After(deadline) {
			break // the complete request may or may not have been served
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, _, _ := request(t, c, "PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 128}`)
	if st != 204 {
		t.Fatalf("PUT after disconnects = %d", st)
	}
}

func TestHTTPKeepAlive(t *testing.T) {
	h := newHarness(t)
	_, sock := serve(t, h)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for i := range 3 {
		body := `{"vcpu_count": 2, "mem_size_mib": 128}`
		fmt.Fprintf(conn, "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
}

func TestListen(t *testing.T) {
	dir, err := os.MkdirTemp("", "fcapi")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s")

	// A stale socket, left by a process that is gone, is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	l, err := Listen(sock)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	// A live socket is not taken over.
	if _, err := Listen(sock); !errors.Is(err, ErrSocket) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Listen over a live socket = %v", err)
	}
	l.Close()
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left after Close: %v", err)
	}
	// A regular file is never removed.
	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, []byte("keep"), 0o644)
	if _, err := Listen(regular); !errors.Is(err, ErrSocket) || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a file = %v", err)
	}
	if b, _ := os.ReadFile(regular); string(b) != "keep" {
		t.Fatal("the regular file was touched")
	}
	if _, err := Listen(filepath.Join(dir, "no", "dir", "s")); !errors.Is(err, ErrSocket) {
		t.Fatalf("Listen in a missing directory = %v", err)
	}
}

func TestServeAfterClose(t *testing.T) {
	h := newHarness(t)
	h.s.Close()
	dir, err := os.MkdirTemp("", "fcapi")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := Listen(filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.Serve(l); err != nil {
		t.Fatalf("Serve after Close = %v", err)
	}
	h.ok("PUT", "/boot-source", `{"kernel_image_path": "`+h.kernel+`"}`)
	h.fault("PUT", "/actions", `{"action_type": "InstanceStart"}`, "Start microvm error: the API server is shutting down")
}
