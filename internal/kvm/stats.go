package kvm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
)

// Stats is a KVM binary statistics file (KVM_GET_STATS_FD).
type Stats struct {
	f     *os.File
	descs []StatDesc
	data  int64
}

// StatDesc describes one statistic.
type StatDesc struct {
	Name       string
	Flags      uint32 // type, unit and base (KVM_STATS_TYPE_*, _UNIT_*, _BASE_*)
	Exponent   int    // the value is value * Base^Exponent Units
	Size       int    // number of uint64 values (buckets of a histogram)
	Offset     int
	BucketSize int // linear histograms: the width of a bucket
}

// Fields of StatDesc.Flags (include/uapi/linux/kvm.h).
const (
	statsTypeMask  = 0xf
	statsUnitShift = 4
	statsUnitMask  = 0xf
	statsBaseShift = 8
	statsBaseMask  = 0xf
)

// statsTypes and statsUnits name KVM's statistic types and units.
var (
	statsTypes = [...]string{"cumulative", "instant", "peak", "linear-histogram", "log2-histogram"}
	statsUnits = [...]string{"", "bytes", "seconds", "cycles", "boolean"}
)

// Type is the statistic's kind: "cumulative", "instant", "peak",
// "linear-histogram" or "log2-histogram" ("" for a kind this package
// does not know).
func (d StatDesc) Type() string {
	if t := int(d.Flags & statsTypeMask); t < len(statsTypes) {
		return statsTypes[t]
	}
	return ""
}

// Unit is what the value counts: "bytes", "seconds", "cycles",
// "boolean", or "" for a plain number.
func (d StatDesc) Unit() string {
	if u := int(d.Flags >> statsUnitShift & statsUnitMask); u < len(statsUnits) {
		return statsUnits[u]
	}
	return ""
}

// Base is the base of Exponent: 10 or 2.
func (d StatDesc) Base() int {
	if d.Flags>>statsBaseShift&statsBaseMask == 1 {
		return 2
	}
	return 10
}

// Histogram reports whether the statistic is a histogram (a list of
// bucket counts rather than one value).
func (d StatDesc) Histogram() bool {
	t := d.Flags & statsTypeMask
	return t == 3 || t == 4
}

// Stat is one statistic's descriptor and current value(s).
type Stat struct {
	StatDesc
	Values []uint64 // one value, or a histogram's buckets
}

func openStats(fd uintptr) (*Stats, error) {
	r, err := ioctl(fd, ioctlGetStatsFD, 0)
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_GET_STATS_FD: %w", err)
	}
	s := &Stats{f: os.NewFile(r, "kvm-stats")}
	if err := s.readDescs(); err != nil {
		s.f.Close()
		return nil, err
	}
	return s, nil
}

func (s *Stats) readDescs() error {
	var h StatsHeader
	hb := make([]byte, binary.Size(h))
	if _, err := s.f.ReadAt(hb, 0); err != nil {
		return fmt.Errorf("kvm: reading stats header: %w", err)
	}
	if err := binary.Read(bytes.NewReader(hb), binary.LittleEndian, &h); err != nil {
		return err
	}
	if h.Num_desc > 4096 || h.Name_size > 4096 {
		return fmt.Errorf("kvm: implausible stats header")
	}
	dsz := binary.Size(statsDescHeader{}) + int(h.Name_size)
	db := make([]byte, dsz*int(h.Num_desc))
	if _, err := s.f.ReadAt(db, int64(h.Desc_offset)); err != nil {
		return fmt.Errorf("kvm: reading stats descriptors: %w", err)
	}
	hs := binary.Size(statsDescHeader{})
	for i := 0; i < int(h.Num_desc); i++ {
		d := db[i*dsz : (i+1)*dsz]
		var sd statsDescHeader
		binary.Read(bytes.NewReader(d[:hs]), binary.LittleEndian, &sd)
		name := d[hs:]
		if j := bytes.IndexByte(name, 0); j >= 0 {
			name = name[:j]
		}
		if sd.Size == 0 || sd.Size > 1024 || sd.Offset > 1<<20 {
			return fmt.Errorf("kvm: statistic %q: implausible descriptor (%d values at offset %d)", name, sd.Size, sd.Offset)
		}
		s.descs = append(s.descs, StatDesc{Name: string(name), Flags: sd.Flags, Exponent: int(sd.Exponent),
			Size: int(sd.Size), Offset: int(sd.Offset), BucketSize: int(sd.Bucket_size)})
	}
	s.data = int64(h.Data_offset)
	return nil
}

// Descriptors lists the statistics.
func (s *Stats) Descriptors() []StatDesc { return s.descs }

// ReadAll returns every statistic with its current value(s), in the
// order of the descriptors.
func (s *Stats) ReadAll() ([]Stat, error) {
	end := 0
	for _, d := range s.descs {
		if e := d.Offset + 8*d.Size; e > end {
			end = e
		}
	}
	buf := make([]byte, end)
	if _, err := s.f.ReadAt(buf, s.data); err != nil {
		return nil, fmt.Errorf("kvm: reading stats: %w", err)
	}
	out := make([]Stat, len(s.descs))
	for i, d := range s.descs {
		vals := make([]uint64, d.Size)
		for j := range vals {
			vals[j] = binary.LittleEndian.Uint64(buf[d.Offset+8*j:])
		}
		out[i] = Stat{StatDesc: d, Values: vals}
	}
	return out, nil
}

// Read returns the current value of every statistic by name
// (histograms are summed).
func (s *Stats) Read() (map[string]uint64, error) {
	all, err := s.ReadAll()
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(all))
	for _, st := range all {
		var v uint64
		for _, x := range st.Values {
			v += x
		}
		out[st.Name] = v
	}
	return out, nil
}

// Close closes the statistics file.
func (s *Stats) Close() error { return s.f.Close() }
