package x86

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// parsedMP is an MP table read back from guest memory.
type parsedMP struct {
	cpus      []mpCPU
	buses     []string
	ioapics   []mpIOAPIC
	intrs     [][7]byte // interrupt type, flags (2 bytes), bus, IRQ, APIC ID, pin
	lints     [][7]byte
	lapicAddr uint32
	entries   int
}

type mpCPU struct {
	apicID, version, flags uint8
}

type mpIOAPIC struct {
	id, version, flags uint8
	addr               uint32
}

func sum(b []byte) uint8 {
	var s uint8
	for _, c := range b {
		s += c
	}
	return s
}

// findMPFloating scans like Linux: 16-byte steps through [base, base+n).
func findMPFloating(t *testing.T, mem *guestmem.Memory, base, n uint64) (uint64, bool) {
	t.Helper()
	b, err := mem.Slice(base, n)
	if err != nil {
		t.Fatal(err)
	}
	for off := uint64(0); off+16 <= n; off += 16 {
		if bytes.Equal(b[off:off+4], []byte("_MP_")) && b[off+8] == 1 && sum(b[off:off+16]) == 0 {
			return base + off, true
		}
	}
	return 0, false
}

func parseMP(t *testing.T, mem *guestmem.Memory) parsedMP {
	t.Helper()
	fpAddr, ok := findMPFloating(t, mem, 639*0x400, 0x400)
	if !ok {
		t.Fatal("no MP floating pointer in the last KiB of base memory")
	}
	fp, _ := mem.Slice(fpAddr, 16)
	if fp[9] != 4 || fp[11] != 0 {
		t.Fatalf("floating pointer spec %d, feature1 %d", fp[9], fp[11])
	}
	cfgAddr := uint64(binary.LittleEndian.Uint32(fp[4:]))
	hdr, err := mem.Slice(cfgAddr, mpHeaderSize)
	if err != nil {
		t.Fatal(err)
	}
	if string(hdr[:4]) != "PCMP" || hdr[6] != 4 {
		t.Fatalf("config header %q spec %d", hdr[:4], hdr[6])
	}
	if string(hdr[8:16]) != "VIREO   " || string(hdr[16:28]) != "000000000000" {
		t.Errorf("OEM %q product %q", hdr[8:16], hdr[16:28])
	}
	length := uint64(binary.LittleEndian.Uint16(hdr[4:]))
	cfg, err := mem.Slice(cfgAddr, length)
	if err != nil {
		t.Fatal(err)
	}
	if s := sum(cfg); s != 0 {
		t.Fatalf("config table checksum: byte sum %#x", s)
	}
	p := parsedMP{
		lapicAddr: binary.LittleEndian.Uint32(hdr[36:]),
		entries:   int(binary.LittleEndian.Uint16(hdr[34:])),
	}
	off := uint64(mpHeaderSize)
	for n := 0; n < p.entries; n++ {
		if off >= length {
			t.Fatalf("entry %d starts at %d, past the table (%d bytes)", n, off, length)
		}
		e := cfg[off:]
		switch e[0] {
		case mpEntryProcessor:
			p.cpus = append(p.cpus, mpCPU{e[1], e[2], e[3]})
			off += mpCPUSize
		case mpEntryBus:
			p.buses = append(p.buses, string(e[2:8]))
			off += 8
		case mpEntryIOAPIC:
			p.ioapics = append(p.ioapics, mpIOAPIC{e[1], e[2], e[3], binary.LittleEndian.Uint32(e[4:])})
			off += 8
		case mpEntryIOIntr:
			p.intrs = append(p.intrs, [7]byte(e[1:8]))
			off += 8
		case mpEntryLocalIntr:
			p.lints = append(p.lints, [7]byte(e[1:8]))
			off += 8
		default:
			t.Fatalf("unknown entry type %d at offset %d", e[0], off)
		}
	}
	if off != length {
		t.Errorf("entries end at %d, table length %d", off, length)
	}
	return p
}

func TestWriteMPTable(t *testing.T) {
	for _, cpus := range []int{1, 2, 3, 64, 200, MaxMPTableCPUs} {
		mem := newMem(t, 64<<20)
		if err := WriteMPTable(mem, cpus); err != nil {
			t.Fatalf("%d CPUs: %v", cpus, err)
		}
		p := parseMP(t, mem)
		if len(p.cpus) != cpus {
			t.Fatalf("%d CPUs: %d processor entries", cpus, len(p.cpus))
		}
		for i, c := range p.cpus {
			wantFlags := uint8(mpCPUEnabled)
			if i == 0 {
				wantFlags |= mpCPUBoot
			}
			if c.apicID != uint8(i) || c.version != 0x14 || c.flags != wantFlags {
				t.Errorf("%d CPUs: processor %d = %+v", cpus, i, c)
			}
		}
		if len(p.buses) != 1 || p.buses[0] != "ISA   " {
			t.Errorf("buses %q", p.buses)
		}
		want := mpIOAPIC{id: uint8(cpus), version: 0x11, flags: 1, addr: 0xfec00000}
		if len(p.ioapics) != 1 || p.ioapics[0] != want {
			t.Errorf("I/O APICs %+v, want %+v", p.ioapics, want)
		}
		if len(p.intrs) != 24 {
			t.Fatalf("%d interrupt entries", len(p.intrs))
		}
		for irq, e := range p.intrs {
			// INT, conforming flags, ISA bus, IRQ n -> I/O APIC pin n
			if e != [7]byte{mpIntINT, 0, 0, 0, uint8(irq), uint8(cpus), uint8(irq)} {
				t.Errorf("interrupt entry %d = %v", irq, e)
			}
		}
		wantLints := [][7]byte{
			{mpIntExtINT, 0, 0, 0, 0, 0, 0},
			{mpIntNMI, 0, 0, 0, 0, 0xff, 1},
		}
		if len(p.lints) != 2 || p.lints[0] != wantLints[0] || p.lints[1] != wantLints[1] {
			t.Errorf("local interrupts %v", p.lints)
		}
		if p.lapicAddr != 0xfee00000 {
			t.Errorf("local APIC at %#x", p.lapicAddr)
		}
		if p.entries != cpus+1+1+24+2 {
			t.Errorf("%d entries", p.entries)
		}
		if end := MPTableStart + MPTableSize(cpus); end > MPTableEnd {
			t.Errorf("%d CPUs: table ends at %#x", cpus, end)
		}
	}
}

func TestWriteMPTableTopology(t *testing.T) {
	mem := newMem(t, 64<<20)
	topo := Topology{CPUs: 6, Sockets: 2} // APIC IDs 0 1 2 4 5 6
	if err := WriteMPTableTopology(mem, topo); err != nil {
		t.Fatal(err)
	}
	p := parseMP(t, mem)
	for i, c := range p.cpus {
		if uint32(c.apicID) != topo.APICID(i) {
			t.Errorf("processor %d has APIC ID %d, want %d", i, c.apicID, topo.APICID(i))
		}
	}
	if p.ioapics[0].id != 7 {
		t.Errorf("I/O APIC ID %d, want 7", p.ioapics[0].id)
	}
}

func TestWriteMPTableErrors(t *testing.T) {
	mem := newMem(t, 64<<20)
	for _, tc := range []struct {
		topo Topology
		want error
	}{
		{Topology{CPUs: 0}, ErrInvalidTopology},
		{Topology{CPUs: -3}, ErrInvalidTopology},
		{Topology{CPUs: MaxMPTableCPUs + 1}, ErrTooManyCPUs},
		{Topology{CPUs: MaxCPUs}, ErrTooManyCPUs},
		// 254 vCPUs, but sparse APIC IDs run past 253.
		{Topology{CPUs: 254, Sockets: 2}, ErrTooManyCPUs},
	} {
		if err := WriteMPTableTopology(mem, tc.topo); !errors.Is(err, tc.want) {
			t.Errorf("%+v: error %v, want %v", tc.topo, err, tc.want)
		}
	}
}

func TestMPTableRewrite(t *testing.T) {
	// A smaller table written over a larger one must still parse.
	mem := newMem(t, 64<<20)
	if err := WriteMPTable(mem, 64); err != nil {
		t.Fatal(err)
	}
	if err := WriteMPTable(mem, 1); err != nil {
		t.Fatal(err)
	}
	if p := parseMP(t, mem); len(p.cpus) != 1 {
		t.Errorf("%d processors after rewrite", len(p.cpus))
	}
}
