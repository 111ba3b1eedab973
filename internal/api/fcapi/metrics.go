package fcapi

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// metrics keeps the API request counters and writes Firecracker-shaped
// metrics lines. As in Firecracker, every counter in a line is the
// increase since the previous line.
type metrics struct {
	mu      sync.Mutex
	file    *os.File // nil until PUT /metrics
	counts  map[string]uint64
	flushed map[string]uint64
	exits   ExitCounts        // vCPU exit totals at the previous line
	devices map[string]uint64 // device counter totals at the previous line
	fails   uint64            // lines that could not be written
}

func newMetrics() *metrics {
	return &metrics{counts: map[string]uint64{}, flushed: map[string]uint64{}, devices: map[string]uint64{}}
}

// count records one request to ep. As in Firecracker, a request is
// counted before it runs, so FlushMetrics counts itself.
func (m *metrics) count(ep endpoint) {
	if ep.name == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[ep.group+"."+ep.name+"_count"]++
}

// fail records that a request to ep was refused (GETs have no counter).
func (m *metrics) fail(ep endpoint) {
	if ep.name == "" || ep.group == "get_api_requests" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[ep.group+"."+ep.name+"_fails"]++
}

// configured reports whether PUT /metrics has set a destination.
func (m *metrics) configured() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.file != nil
}

// setFile sets the destination once, as Firecracker allows.
func (m *metrics) setFile(f *os.File) *fault {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.file != nil {
		return badRequest("Metrics error: %s", msgMetricsTwice)
	}
	m.file = f
	return nil
}

// vcpuMetrics are Vireo's vCPU exit counters. Firecracker splits I/O and
// MMIO exits by direction; Vireo's vCPU statistics do not.
type vcpuMetrics struct {
	ExitIO    uint64 `json:"exit_io"`
	ExitMMIO  uint64 `json:"exit_mmio"`
	ExitHLT   uint64 `json:"exit_hlt"`
	ExitIntr  uint64 `json:"exit_intr"`
	ExitOther uint64 `json:"exit_other"`
}

type loggerMetrics struct {
	MetricsFails uint64 `json:"metrics_fails"`
}

// metricsLine is one line of the metrics file.
type metricsLine struct {
	UTCTimestampMs   int64             `json:"utc_timestamp_ms"`
	GetAPIRequests   map[string]uint64 `json:"get_api_requests"`
	PutAPIRequests   map[string]uint64 `json:"put_api_requests"`
	PatchAPIRequests map[string]uint64 `json:"patch_api_requests"`
	Logger           loggerMetrics     `json:"logger"`
	VCPU             vcpuMetrics       `json:"vcpu"`
}

// flush writes one line with the increases since the last one. exits are
// the current totals, or nil before the VM runs; devices are the device
// sections' totals (metrics_devices.go). Without a destination it does
// nothing, as in Firecracker.
func (m *metrics) flush(now time.Time, exits *ExitCounts, devices []section) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.file == nil {
		return nil
	}
	line := metricsLine{
		UTCTimestampMs:   now.UnixMilli(),
		GetAPIRequests:   map[string]uint64{},
		PutAPIRequests:   map[string]uint64{},
		PatchAPIRequests: map[string]uint64{},
		Logger:           loggerMetrics{MetricsFails: m.fails},
	}
	groups := map[string]map[string]uint64{
		"get_api_requests":   line.GetAPIRequests,
		"put_api_requests":   line.PutAPIRequests,
		"patch_api_requests": line.PatchAPIRequests,
	}
	for _, ep := range countedEndpoints {
		keys := []string{ep.name + "_count"}
		if ep.group != "get_api_requests" {
			keys = append(keys, ep.name+"_fails")
		}
		for _, k := range keys {
			full := ep.group + "." + k
			groups[ep.group][k] = m.counts[full] - m.flushed[full]
		}
	}
	if exits != nil {
		line.VCPU = vcpuMetrics{
			ExitIO:    delta(exits.IO, m.exits.IO),
			ExitMMIO:  delta(exits.MMIO, m.exits.MMIO),
			ExitHLT:   delta(exits.HLT, m.exits.HLT),
			ExitIntr:  delta(exits.Intr, m.exits.Intr),
			ExitOther: delta(exits.Other, m.exits.Other),
		}
	}
	b, err := json.Marshal(line)
	if err != nil {
		m.fails++
		return fmt.Errorf("encoding metrics: %w", err)
	}
	next := make(map[string]uint64, len(m.devices))
	b = appendSections(b, deviceSections(devices, m.devices, next))
	if _, err := m.file.Write(append(b, '\n')); err != nil {
		m.fails++
		return fmt.Errorf("writing metrics: %w", err)
	}
	for k, v := range m.counts {
		m.flushed[k] = v
	}
	if exits != nil {
		m.exits = *exits
	}
	if devices != nil {
		m.devices = next
	}
	m.fails = 0
	return nil
}

// delta is cur-prev, or cur when the counters restarted (a new machine).
func delta(cur, prev uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// close releases the destination.
func (m *metrics) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.file == nil {
		return nil
	}
	err := m.file.Close()
	m.file = nil
	return err
}
