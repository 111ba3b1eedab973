package x86

import (
	"encoding/binary"
	"testing"
)

// encodeTable packs entries for the fuzzer's seed corpus.
func encodeTable(entries []CPUIDEntry) []byte {
	var b []byte
	for _, e := range entries {
		for _, v := range []uint32{e.Function, e.Index, e.Flags, e.EAX, e.EBX, e.ECX, e.EDX} {
			b = binary.LittleEndian.AppendUint32(b, v)
		}
	}
	return b
}

func decodeTable(b []byte) []CPUIDEntry {
	var out []CPUIDEntry
	for len(b) >= 28 {
		u := func(i int) uint32 { return binary.LittleEndian.Uint32(b[i*4:]) }
		out = append(out, CPUIDEntry{u(0), u(1), u(2), u(3), u(4), u(5), u(6)})
		b = b[28:]
	}
	return out
}

// FuzzBuildCPUID feeds arbitrary supported tables and topologies: the
// builder must return an error or a table KVM accepts, never panic.
func FuzzBuildCPUID(f *testing.F) {
	f.Add(encodeTable(pvmHostSupported), uint16(4), uint8(1), uint8(1), uint16(3), uint8(0))
	f.Add(encodeTable(intelSupported), uint16(12), uint8(2), uint8(2), uint16(7), uint8(2))
	f.Add(encodeTable(intelSupported[:2]), uint16(1), uint8(0), uint8(0), uint16(0), uint8(3))
	names := TemplateNames()
	f.Fuzz(func(t *testing.T, table []byte, cpus uint16, threads, sockets uint8, index uint16, tmplIdx uint8) {
		tmpl, err := TemplateByName(names[int(tmplIdx)%len(names)])
		if err != nil {
			t.Fatal(err)
		}
		topo := Topology{CPUs: int(cpus), ThreadsPerCore: int(threads), Sockets: int(sockets)}
		out, err := BuildCPUID(decodeTable(table), int(index), topo, tmpl)
		if err != nil {
			return
		}
		if len(out) > MaxCPUIDEntries {
			t.Fatalf("%d entries", len(out))
		}
		l1 := cpuidTable(out).find(leafFeatures, 0)
		if l1 == nil || l1.ECX&bitHypervisor == 0 {
			t.Fatalf("leaf 1 missing or without the hypervisor bit: %+v", l1)
		}
		if cpuidTable(out).find(LeafKVMSignature, 0) == nil {
			t.Fatal("KVM signature leaf missing")
		}
	})
}
