package fcapi

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// HTTP limits. Firecracker has no header timeout; a slow client here only
// holds its own connection.
const (
	maxHeaderBytes    = 32 << 10
	readHeaderTimeout = 30 * time.Second
)

// Listen creates the API socket at path. A socket file left by a process
// that is gone is replaced; one that still answers, or a path that is not
// a socket, is an error. The file is removed when the listener closes.
func Listen(path string) (*net.UnixListener, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%w: %s exists and is not a socket", ErrSocket, path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: %s is in use by another process", ErrSocket, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("%w: removing the stale socket: %v", ErrSocket, err)
		}
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSocket, err)
	}
	l.SetUnlinkOnClose(true)
	return l, nil
}

// Serve answers HTTP/1.1 requests on l until Close; it closes l.
func (s *Server) Serve(l net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(slogWriter{s.log}, "", 0),
	}
	s.httpMu.Lock()
	s.https = append(s.https, hs)
	s.httpMu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		hs.Close()
		l.Close()
		return nil
	}
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeHTTP reads the body (within the size limit) and answers with
// Handle's response.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var resp Response
	if body, f := s.readBody(w, r); f != nil {
		resp = faultResponse(f)
	} else {
		resp = s.Handle(r.Method, r.URL.Path, body)
	}
	h := w.Header()
	h.Set("Server", "Vireo API")
	if resp.Status == http.StatusNoContent || len(resp.Body) == 0 {
		w.WriteHeader(resp.Status)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(resp.Status)
	// A client that left early is not an error worth reporting.
	_, _ = w.Write(resp.Body)
}

// readBody reads the request body, refusing one over the limit without
// reading it all.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *fault) {
	limit := s.opts.MaxBody
	if r.ContentLength > limit {
		return nil, payloadTooLarge(strconv.FormatInt(r.ContentLength, 10), limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, payloadTooLarge("over "+strconv.FormatInt(limit, 10), limit)
	case err != nil:
		return nil, badRequest("Cannot read the request body: %s", err)
	}
	return body, nil
}

func payloadTooLarge(size string, limit int64) *fault {
	return badRequest("Request payload with size %s is larger than the limit of %d allowed by server.", size, limit)
}

// slogWriter carries net/http's own messages (malformed requests, TLS
// probes) to the server's logger.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("api http", "msg", string(p))
	return len(p), nil
}
