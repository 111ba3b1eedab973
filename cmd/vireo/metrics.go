package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/vireo-vmm/vireo/internal/metrics"
)

// Metrics answers query-blockstats, x-vireo-query-metrics and `info
// blockstats`.
func (m qmpMachine) Metrics() metrics.Snapshot { return m.ctl.Metrics() }

// checkMetricsAddr validates --metrics: HOST:PORT with a numeric port
// (an empty host listens on every interface).
func checkMetricsAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT, such as 127.0.0.1:9100")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// serveMetrics serves GET /metrics on addr (--metrics) in the Prometheus
// text format, reading the counters with get, until the returned function
// is called. An empty addr serves nothing.
func serveMetrics(addr string, get func() metrics.Snapshot, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	srv := &http.Server{Handler: metrics.Handler(get), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving Prometheus metrics", "url", "http://"+l.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
