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
	Name   string
	Flags  uint32
	Size   int // number of uint64 values
	Offset int
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
		s.descs = append(s.descs, StatDesc{Name: string(name), Flags: sd.Flags, Size: int(sd.Size), Offset: int(sd.Offset)})
	}
	s.data = int64(h.Data_offset)
	return nil
}

// Descriptors lists the statistics.
func (s *Stats) Descriptors() []StatDesc { return s.descs }

// Read returns the current value of every single-valued statistic by name
// (histograms are summed).
func (s *Stats) Read() (map[string]uint64, error) {
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
	out := make(map[string]uint64, len(s.descs))
	for _, d := range s.descs {
		var v uint64
		for i := 0; i < d.Size; i++ {
			v += binary.LittleEndian.Uint64(buf[d.Offset+8*i:])
		}
		out[d.Name] = v
	}
	return out, nil
}

// Close closes the statistics file.
func (s *Stats) Close() error { return s.f.Close() }
