package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// ErrAPI reports a failed Firecracker API request.
var ErrAPI = errors.New("firecracker API")

// fcClient speaks HTTP/1.1 to a Firecracker-compatible API on a Unix
// socket, over one kept-alive connection.
type fcClient struct {
	http *http.Client
}

func newFCClient(sock string) *fcClient {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns:      1,
		DisableKeepAlives: false,
	}
	return &fcClient{http: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// waitReady polls GET / until the server answers, for up to timeout.
func (c *fcClient) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.do(ctx, http.MethodGet, "/", nil, http.StatusOK)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("API socket not ready within %v: %w", timeout, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// put sends body as JSON and expects 204 No Content.
func (c *fcClient) put(ctx context.Context, path string, body any) error {
	return c.do(ctx, http.MethodPut, path, body, http.StatusNoContent)
}

// do sends one request and requires the status want; the error carries
// the server's fault message.
func (c *fcClient) do(ctx context.Context, method, path string, body any, want int) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%w: %s %s: %w", ErrAPI, method, path, err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, r)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrAPI, method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrAPI, method, path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != want {
		return fmt.Errorf("%w: %s %s: %s: %s", ErrAPI, method, path, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

func (c *fcClient) close() { c.http.CloseIdleConnections() }
