package metrics

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// ContentType is the media type of the Prometheus text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// family is one metric family of the exposition: a name, its HELP and
// TYPE lines and its samples.
type family struct {
	name, help, typ string
	samples         []sample
}

// sample is one line: label pairs (name, value, name, value, ...) and a
// value already formatted.
type sample struct {
	labels []string
	value  string
}

func (f *family) add(value string, labels ...string) {
	f.samples = append(f.samples, sample{labels: labels, value: value})
}

func (f *family) count(v uint64, labels ...string) { f.add(strconv.FormatUint(v, 10), labels...) }

// families lists the metric families of s in a fixed order.
func families(s Snapshot) []*family {
	counter := func(name, help string) *family { return &family{name: name, help: help, typ: "counter"} }
	exits := counter("vireo_vcpu_exits_total", "vCPU exits from KVM_RUN to the VMM, by vCPU and reason.")
	for _, v := range s.VCPUs {
		id := strconv.Itoa(v.Index)
		e := v.Exits
		for _, k := range []struct {
			kind string
			n    uint64
		}{{"io", e.IO}, {"mmio", e.MMIO}, {"hlt", e.HLT}, {"intr", e.Intr}, {"other", e.Other}} {
			exits.count(k.n, "vcpu", id, "kind", k.kind)
		}
	}
	out := []*family{exits}
	out = append(out, blockFamilies(s.Disks, counter)...)
	out = append(out, netFamilies(s.Nets, counter)...)
	out = append(out, otherFamilies(s, counter)...)
	return out
}

func blockFamilies(disks []Block, counter func(string, string) *family) []*family {
	ops := counter("vireo_block_operations_total", "Block requests completed successfully, by disk and kind.")
	bytes := counter("vireo_block_bytes_total", "Bytes read, written, flushed, discarded or zeroed by completed block requests.")
	failed := counter("vireo_block_failed_operations_total", "Block requests that failed with a host I/O error.")
	secs := counter("vireo_block_operation_seconds_total", "Time spent serving completed block requests.")
	invalid := counter("vireo_block_invalid_requests_total", "Malformed or out-of-range block requests refused.")
	high := &family{name: "vireo_block_highest_write_offset_bytes", help: "End of the highest range written on the disk.", typ: "gauge"}
	for _, d := range disks {
		for _, op := range []struct {
			kind string
			o    BlockOp
		}{{"read", d.Read}, {"write", d.Write}, {"flush", d.Flush}, {"discard", d.Discard}, {"write_zeroes", d.WriteZeroes}} {
			ops.count(op.o.Ops, "device", d.ID, "kind", op.kind)
			bytes.count(op.o.Bytes, "device", d.ID, "kind", op.kind)
			failed.count(op.o.Failed, "device", d.ID, "kind", op.kind)
			secs.add(strconv.FormatFloat(float64(op.o.TimeNs)/1e9, 'g', -1, 64), "device", d.ID, "kind", op.kind)
		}
		invalid.count(d.Invalid, "device", d.ID)
		high.count(d.HighestWrite, "device", d.ID)
	}
	return []*family{ops, bytes, failed, secs, invalid, high}
}

func netFamilies(nets []Net, counter func(string, string) *family) []*family {
	packets := counter("vireo_net_packets_total", "Packets received (rx, host to guest) and transmitted (tx) by virtio-net.")
	bytes := counter("vireo_net_bytes_total", "Frame bytes received and transmitted by virtio-net, without the virtio-net header.")
	dropped := counter("vireo_net_dropped_packets_total", "Packets virtio-net dropped: malformed, too large or refused.")
	for _, n := range nets {
		packets.count(n.RxPackets, "device", n.ID, "kind", "rx")
		packets.count(n.TxPackets, "device", n.ID, "kind", "tx")
		bytes.count(n.RxBytes, "device", n.ID, "kind", "rx")
		bytes.count(n.TxBytes, "device", n.ID, "kind", "tx")
		dropped.count(n.RxDropped, "device", n.ID, "kind", "rx")
		dropped.count(n.TxDropped, "device", n.ID, "kind", "tx")
	}
	return []*family{packets, bytes, dropped}
}

func otherFamilies(s Snapshot, counter func(string, string) *family) []*family {
	var out []*family
	con := counter("vireo_console_bytes_total", "Bytes moved by virtio-console: rx host to guest, tx guest to host.")
	for _, c := range s.Consoles {
		con.count(c.RxBytes, "device", c.ID, "kind", "rx")
		con.count(c.TxBytes, "device", c.ID, "kind", "tx")
	}
	out = append(out, con)
	if v := s.Vsock; v != nil {
		packets := counter("vireo_vsock_packets_total", "Packets virtio-vsock sent to the guest (rx) and received from it (tx).")
		packets.count(v.RxPackets, "kind", "rx")
		packets.count(v.TxPackets, "kind", "tx")
		bytes := counter("vireo_vsock_bytes_total", "Payload bytes virtio-vsock sent to the guest (rx) and received from it (tx).")
		bytes.count(v.RxBytes, "kind", "rx")
		bytes.count(v.TxBytes, "kind", "tx")
		conns := counter("vireo_vsock_connections_total", "vsock connections opened (added) and closed (removed).")
		conns.count(v.ConnsAdded, "kind", "added")
		conns.count(v.ConnsRemoved, "kind", "removed")
		resets := counter("vireo_vsock_resets_total", "vsock RST packets sent to or received from the guest.")
		resets.count(v.Resets)
		out = append(out, packets, bytes, conns, resets)
	}
	if r := s.RNG; r != nil {
		reqs := counter("vireo_rng_requests_total", "Entropy requests virtio-rng served.")
		reqs.count(r.Requests)
		bytes := counter("vireo_rng_bytes_total", "Entropy bytes virtio-rng supplied.")
		bytes.count(r.Bytes)
		out = append(out, reqs, bytes)
	}
	if b := s.Balloon; b != nil {
		reqs := counter("vireo_balloon_requests_total", "Balloon inflate and deflate requests.")
		reqs.count(b.Inflates, "kind", "inflate")
		reqs.count(b.Deflates, "kind", "deflate")
		pages := counter("vireo_balloon_pages_total", "4 KiB pages put in the balloon (inflate), taken back (deflate) or ignored (invalid).")
		pages.count(b.InflatedPages, "kind", "inflate")
		pages.count(b.DeflatedPages, "kind", "deflate")
		pages.count(b.InvalidPages, "kind", "invalid")
		ret := counter("vireo_balloon_returned_bytes_total", "Guest memory returned to the host after inflates (discard) and free page reports (report).")
		ret.count(b.Discarded, "kind", "discard")
		ret.count(b.Reported, "kind", "report")
		stats := counter("vireo_balloon_stats_updates_total", "Balloon statistics reports received from the guest.")
		stats.count(b.StatsUpdates)
		fails := counter("vireo_balloon_failures_total", "Times the balloon device stopped and asked for a reset.")
		fails.count(b.Failures)
		out = append(out, reqs, pages, ret, stats, fails)
	}
	return out
}

// WriteText writes s in the Prometheus text exposition format (version
// 0.0.4): each family's HELP and TYPE lines, then its samples. Families
// without samples are left out.
func WriteText(w io.Writer, s Snapshot) error {
	bw := bufio.NewWriter(w)
	for _, f := range families(s) {
		if len(f.samples) == 0 {
			continue
		}
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.typ)
		for _, sm := range f.samples {
			bw.WriteString(f.name)
			if len(sm.labels) > 0 {
				bw.WriteByte('{')
				for i := 0; i+1 < len(sm.labels); i += 2 {
					if i > 0 {
						bw.WriteByte(',')
					}
					fmt.Fprintf(bw, "%s=\"%s\"", sm.labels[i], escapeLabel(sm.labels[i+1]))
				}
				bw.WriteByte('}')
			}
			bw.WriteByte(' ')
			bw.WriteString(sm.value)
			bw.WriteByte('\n')
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("metrics: writing the exposition: %w", err)
	}
	return nil
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// Handler serves GET /metrics with the snapshot get returns, in the
// Prometheus text format. Other paths are not found; other methods are
// refused.
func Handler(get func() Snapshot) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		if r.Method == http.MethodHead {
			return
		}
		WriteText(w, get()) // a failed write means the scraper left
	})
}
