package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/metrics"
)

func TestCheckMetricsAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9100": true, ":9100": true, "[::1]:9100": true, "localhost:0": true,
		"9100": false, "127.0.0.1": false, "127.0.0.1:http": false, "127.0.0.1:70000": false, "": false,
	} {
		if err := checkMetricsAddr(addr); (err == nil) != ok {
			t.Errorf("checkMetricsAddr(%q) = %v", addr, err)
		}
	}
	if _, err := parseRunFlags([]string{"--metrics", "nope"}, io.Discard); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
		t.Errorf("--metrics nope: %v", err)
	}
	f, err := parseRunFlags([]string{"--metrics", "127.0.0.1:9100"}, io.Discard)
	if err != nil || f.metricsAddr != "127.0.0.1:9100" {
		t.Errorf("--metrics 127.0.0.1:9100: %v, %+v", err, f)
	}
}

func TestServeMetrics(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	snap := metrics.Snapshot{RNG: &metrics.RNG{Requests: 1, Bytes: 64}}
	stop, err := serveMetrics(addr, func() metrics.Snapshot { return snap }, log)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "vireo_rng_bytes_total 64\n") {
		t.Errorf("GET /metrics:\n%s", body)
	}
	// The address is taken now: a second server fails with one line.
	if _, err := serveMetrics(addr, nil, log); err == nil || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "metrics: ") {
		t.Errorf("second server on %s: %v", addr, err)
	}
	stop()
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("still serving after stop")
	}
	if stop, err := serveMetrics("", nil, log); err != nil {
		t.Errorf("no --metrics: %v", err)
	} else {
		stop()
	}
}
