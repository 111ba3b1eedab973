package fcapi

import (
	"encoding/json"
	"strconv"
	"strings"

	vmetrics "github.com/vireo-vmm/vireo/internal/metrics"
)

// section is one device group of a metrics line, such as "block_rootfs"
// or "net", with Firecracker's field names in a fixed order.
type section struct {
	name   string
	fields []field
}

type field struct {
	name string
	n    uint64
}

// The sections' fields, in Firecracker's names. Only what Vireo counts
// is written: drops count as rx_fails and tx_fails, host I/O errors of
// any block request as execute_fails.
var (
	blockFields   = []string{"read_bytes", "write_bytes", "read_count", "write_count", "flush_count", "invalid_reqs_count", "execute_fails"}
	netFields     = []string{"rx_bytes_count", "rx_packets_count", "rx_fails", "tx_bytes_count", "tx_packets_count", "tx_fails"}
	vsockFields   = []string{"rx_bytes_count", "tx_bytes_count", "rx_packets_count", "tx_packets_count", "conns_added", "conns_removed"}
	balloonFields = []string{"inflate_count", "deflate_count", "stats_updates_count"}
)

func newSection(name string, names []string, values ...uint64) section {
	s := section{name: name, fields: make([]field, len(names))}
	for i, n := range names {
		s.fields[i] = field{name: n, n: values[i]}
	}
	return s
}

// deviceTotals lists each device's section with its running totals:
// block_<drive_id> per disk, net_<iface_id> per interface, then vsock and
// balloon when the VM has them.
func deviceTotals(s vmetrics.Snapshot) []section {
	var out []section
	for _, d := range s.Disks {
		out = append(out, newSection("block_"+d.ID, blockFields,
			d.Read.Bytes, d.Write.Bytes, d.Read.Ops, d.Write.Ops, d.Flush.Ops, d.Invalid,
			d.Read.Failed+d.Write.Failed+d.Flush.Failed+d.Discard.Failed+d.WriteZeroes.Failed))
	}
	for _, n := range s.Nets {
		out = append(out, newSection("net_"+n.ID, netFields,
			n.RxBytes, n.RxPackets, n.RxDropped, n.TxBytes, n.TxPackets, n.TxDropped))
	}
	if v := s.Vsock; v != nil {
		out = append(out, newSection("vsock", vsockFields,
			v.RxBytes, v.TxBytes, v.RxPackets, v.TxPackets, v.ConnsAdded, v.ConnsRemoved))
	}
	if b := s.Balloon; b != nil {
		out = append(out, newSection("balloon", balloonFields, b.Inflates, b.Deflates, b.StatsUpdates))
	}
	return out
}

// deviceSections turns the totals into the increases since prev (keyed
// "section.field"), with the "block" and "net" sums Firecracker writes
// beside the per-device sections; vsock and balloon are written as zeros
// when absent, as Firecracker does. It records the totals in next.
func deviceSections(totals []section, prev, next map[string]uint64) []section {
	blockSum := newSection("block", blockFields, make([]uint64, len(blockFields))...)
	netSum := newSection("net", netFields, make([]uint64, len(netFields))...)
	var out, blocks, nets []section
	seen := map[string]bool{}
	for _, sec := range totals {
		d := section{name: sec.name, fields: make([]field, len(sec.fields))}
		for i, f := range sec.fields {
			key := sec.name + "." + f.name
			next[key] = f.n
			d.fields[i] = field{name: f.name, n: delta(f.n, prev[key])}
		}
		seen[sec.name] = true
		switch {
		case strings.HasPrefix(sec.name, "block_"):
			blocks = append(blocks, d)
			addFields(&blockSum, d)
		case strings.HasPrefix(sec.name, "net_"):
			nets = append(nets, d)
			addFields(&netSum, d)
		default:
			out = append(out, d)
		}
	}
	all := append(append(append(blocks, blockSum), nets...), netSum)
	all = append(all, out...)
	if !seen["vsock"] {
		all = append(all, newSection("vsock", vsockFields, make([]uint64, len(vsockFields))...))
	}
	if !seen["balloon"] {
		all = append(all, newSection("balloon", balloonFields, make([]uint64, len(balloonFields))...))
	}
	return all
}

func addFields(sum *section, d section) {
	for i := range sum.fields {
		sum.fields[i].n += d.fields[i].n
	}
}

// appendSections adds the sections to the JSON object in line, keeping
// their order.
func appendSections(line []byte, secs []section) []byte {
	if len(secs) == 0 || len(line) < 2 || line[len(line)-1] != '}' {
		return line
	}
	b := line[:len(line)-1]
	for _, s := range secs {
		name, _ := json.Marshal(s.name) // a string always encodes
		b = append(append(append(b, ','), name...), ":{"...)
		for i, f := range s.fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(append(append(b, '"'), f.name...), "\":"...)
			b = strconv.AppendUint(b, f.n, 10)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}
