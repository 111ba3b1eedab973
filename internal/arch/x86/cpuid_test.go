package x86

import (
	"errors"
	"slices"
	"testing"
)

// lookup returns the entry answering CPUID(fn, index) or fails the test.
func lookup(t *testing.T, table []CPUIDEntry, fn, index uint32) CPUIDEntry {
	t.Helper()
	e := cpuidTable(table).find(fn, index)
	if e == nil {
		t.Fatalf("CPUID %#x.%d missing", fn, index)
	}
	return *e
}

func build(t *testing.T, supported []CPUIDEntry, cpu int, topo Topology, tmpl *Template) []CPUIDEntry {
	t.Helper()
	out, err := BuildCPUID(supported, cpu, topo, tmpl)
	if err != nil {
		t.Fatalf("BuildCPUID(cpu %d, %+v): %v", cpu, topo, err)
	}
	return out
}

func TestBuildCPUIDDoesNotModifyInput(t *testing.T) {
	before := slices.Clone(pvmHostSupported)
	build(t, pvmHostSupported, 1, Topology{CPUs: 2}, nil)
	if !slices.Equal(before, pvmHostSupported) {
		t.Fatal("BuildCPUID modified the supported table")
	}
}

func TestBuildCPUIDLeaf1(t *testing.T) {
	for _, tc := range []struct {
		name      string
		supported []CPUIDEntry
	}{{"pvm-amd", pvmHostSupported}, {"intel", intelSupported}} {
		for _, cpus := range []int{1, 2, 3, 8} {
			for cpu := range cpus {
				out := build(t, tc.supported, cpu, Topology{CPUs: cpus}, nil)
				e := lookup(t, out, 1, 0)
				if got := field(e.EBX, 24, 31); got != uint32(cpu) {
					t.Errorf("%s %d/%d: initial APIC ID %d", tc.name, cpu, cpus, got)
				}
				wantCount := uint32(1) << idBits(cpus)
				if got := field(e.EBX, 16, 23); got != wantCount {
					t.Errorf("%s %d/%d: logical count %d, want %d", tc.name, cpu, cpus, got, wantCount)
				}
				if got := field(e.EBX, 8, 15); got != 8 {
					t.Errorf("%s: CLFLUSH size %d, want 8", tc.name, got)
				}
				if e.ECX&bitHypervisor == 0 {
					t.Errorf("%s: hypervisor bit clear", tc.name)
				}
				if e.ECX&(bitX2APIC|bitTSCDeadline) != bitX2APIC|bitTSCDeadline {
					t.Errorf("%s: x2APIC/TSC-deadline not exposed: ecx %#x", tc.name, e.ECX)
				}
				if e.ECX&(bitVMX|bitPDCM) != 0 {
					t.Errorf("%s: VMX or PDCM exposed: ecx %#x", tc.name, e.ECX)
				}
				if got, want := e.EDX&bitHTT != 0, cpus > 1; got != want {
					t.Errorf("%s %d CPUs: HTT %v, want %v", tc.name, cpus, got, want)
				}
			}
		}
	}
}

func TestBuildCPUIDTopologyLeaves(t *testing.T) {
	topo := Topology{CPUs: 12, ThreadsPerCore: 2, Sockets: 2} // 3 cores per socket
	for cpu := range topo.CPUs {
		out := build(t, intelSupported, cpu, topo, nil)
		id := topo.APICID(cpu)
		var subleaves []CPUIDEntry
		for _, e := range out {
			if e.Function == leafTopology {
				subleaves = append(subleaves, e)
			}
		}
		if len(subleaves) != 3 {
			t.Fatalf("leaf 0xB has %d subleaves, want 3", len(subleaves))
		}
		want := []CPUIDEntry{
			{Function: 0xb, Index: 0, Flags: 1, EAX: 1, EBX: 2, ECX: 0x100, EDX: id},
			{Function: 0xb, Index: 1, Flags: 1, EAX: 3, EBX: 6, ECX: 0x201, EDX: id},
			{Function: 0xb, Index: 2, Flags: 1, EAX: 0, EBX: 0, ECX: 0x2, EDX: id},
		}
		for i := range want {
			if got := lookup(t, out, 0xb, uint32(i)); got != want[i] {
				t.Errorf("cpu %d: leaf 0xB.%d = %+v, want %+v", cpu, i, got, want[i])
			}
		}
		if got := field(lookup(t, out, 1, 0).EBX, 24, 31); got != id {
			t.Errorf("cpu %d: leaf 1 APIC ID %d, want %d", cpu, got, id)
		}
	}
}

func TestBuildCPUIDIntelCacheAndPMU(t *testing.T) {
	out := build(t, intelSupported, 0, Topology{CPUs: 4, ThreadsPerCore: 2}, nil)
	for i, want := range []struct{ sharing, cores uint32 }{{1, 1}, {1, 1}, {1, 1}, {3, 1}} {
		e := lookup(t, out, 4, uint32(i))
		if got := field(e.EAX, 14, 25); got != want.sharing {
			t.Errorf("leaf 4.%d sharing %d, want %d", i, got, want.sharing)
		}
		if got := field(e.EAX, 26, 31); got != want.cores {
			t.Errorf("leaf 4.%d cores %d, want %d", i, got, want.cores)
		}
	}
	if e := lookup(t, out, 4, 4); e.EAX != 0 {
		t.Errorf("leaf 4 terminator changed: %+v", e)
	}
	if e := lookup(t, out, leafPMU, 0); e.EAX|e.EBX|e.ECX|e.EDX != 0 {
		t.Errorf("PMU leaf not cleared: %+v", e)
	}
	if e := lookup(t, out, leafPower, 0); e.EAX != bitARAT || e.ECX != 0 {
		t.Errorf("leaf 6 = %+v, want ARAT only", e)
	}
	if e := lookup(t, out, 7, 0); e.ECX&bitWAITPKG != 0 || e.EDX&bitArchCapabilities == 0 {
		t.Errorf("leaf 7: WAITPKG exposed or Intel ARCH_CAPABILITIES hidden: %+v", e)
	}
	if e := cpuidTable(out).find(leafAMDExtAPICID, 0); e != nil {
		t.Errorf("AMD leaf on Intel: %+v", e)
	}

	withPMU := build(t, intelSupported, 0, Topology{CPUs: 1}, &Template{Name: "pmu", PMU: true})
	if e := lookup(t, withPMU, leafPMU, 0); e.EAX != 0x07300402 {
		t.Errorf("PMU template: leaf 0xA = %+v", e)
	}
	if lookup(t, withPMU, 1, 0).ECX&bitPDCM == 0 {
		t.Error("PMU template: PDCM hidden")
	}
}

func TestBuildCPUIDAMDLeaves(t *testing.T) {
	topo := Topology{CPUs: 8, ThreadsPerCore: 2}
	for cpu := range topo.CPUs {
		out := build(t, pvmHostSupported, cpu, topo, nil)
		e := lookup(t, out, leafAMDExtAPICID, 0)
		if e.EAX != uint32(cpu) || field(e.EBX, 0, 7) != uint32(cpu/2) || field(e.EBX, 8, 15) != 1 || e.ECX != 0 {
			t.Errorf("cpu %d: leaf 0x8000001E = %+v", cpu, e)
		}
		e = lookup(t, out, leafAddrSizes, 0)
		if field(e.ECX, 0, 7) != 7 || field(e.ECX, 12, 15) != 3 {
			t.Errorf("cpu %d: leaf 0x80000008 ecx %#x", cpu, e.ECX)
		}
		if e.EBX&bitXSAVEERPTR == 0 {
			t.Error("XSAVEERPTR hidden")
		}
		for i, want := range []uint32{1, 1, 1, 7} {
			if got := field(lookup(t, out, leafAMDCacheTopo, uint32(i)).EAX, 14, 25); got != want {
				t.Errorf("leaf 0x8000001D.%d sharing %d, want %d", i, got, want)
			}
		}
		if lookup(t, out, 7, 0).EDX&bitArchCapabilities != 0 {
			t.Error("ARCH_CAPABILITIES exposed on AMD")
		}
		if lookup(t, out, leafExtFeatures1, 0).ECX&bitSVM != 0 {
			t.Error("SVM exposed")
		}
	}
}

func TestBuildCPUIDKVMLeaves(t *testing.T) {
	out := build(t, pvmHostSupported, 0, Topology{CPUs: 1}, nil)
	sig := lookup(t, out, LeafKVMSignature, 0)
	if sig.EAX != LeafKVMFeatures {
		t.Errorf("KVM max leaf %#x", sig.EAX)
	}
	var b []byte
	for _, r := range []uint32{sig.EBX, sig.ECX, sig.EDX} {
		b = append(b, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
	}
	if string(b) != "KVMKVMKVM\x00\x00\x00" {
		t.Errorf("KVM signature %q", b)
	}
	want := KVMFeatureClocksource | KVMFeatureNopIODelay | KVMFeatureClocksource2 |
		KVMFeaturePVEOI | KVMFeatureClocksourceStableBit
	if got := lookup(t, out, LeafKVMFeatures, 0).EAX; got != want {
		t.Errorf("KVM features %#x, want %#x", got, want)
	}

	// Intersection with what KVM reports, and the default when it reports nothing.
	limited := slices.Clone(pvmHostSupported)
	cpuidTable(limited).find(LeafKVMFeatures, 0).EAX = KVMFeatureClocksource2 | KVMFeatureAsyncPF
	out = build(t, limited, 0, Topology{CPUs: 1}, nil)
	if got := lookup(t, out, LeafKVMFeatures, 0).EAX; got != KVMFeatureClocksource2 {
		t.Errorf("intersected KVM features %#x", got)
	}
	none := slices.DeleteFunc(slices.Clone(pvmHostSupported), func(e CPUIDEntry) bool { return e.Function >= 0x40000000 && e.Function < 0x40000100 })
	out = build(t, none, 0, Topology{CPUs: 1}, nil)
	if got := lookup(t, out, LeafKVMFeatures, 0).EAX; got != DefaultKVMFeatures {
		t.Errorf("KVM features without KVM's leaf %#x", got)
	}
	n := 0
	for _, e := range out {
		if e.Function == LeafKVMSignature || e.Function == LeafKVMFeatures {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d KVM leaf entries, want 2", n)
	}
}

func TestBuildCPUIDXSAVEConsistency(t *testing.T) {
	// The development host reports XSAVE state but not the XSAVE bit:
	// the state components go with it.
	out := build(t, pvmHostSupported, 0, Topology{CPUs: 1}, nil)
	e := lookup(t, out, leafXSAVE, 0)
	if e.EAX != xfeatureX87|xfeatureSSE || e.ECX != xsaveLegacyHeader {
		t.Errorf("leaf 0xD.0 = %+v", e)
	}
	for _, x := range out {
		if x.Function == leafXSAVE && x.Index >= 2 {
			t.Errorf("leaf 0xD.%d kept without XSAVE", x.Index)
		}
	}
	// Intel with XSAVE: untouched apart from the recomputed size.
	out = build(t, intelSupported, 0, Topology{CPUs: 1}, nil)
	if e := lookup(t, out, leafXSAVE, 0); e.EAX != 0x2e7 || e.ECX != 0xa88 {
		t.Errorf("Intel leaf 0xD.0 = %+v", e)
	}
}

func TestBuildCPUIDErrors(t *testing.T) {
	big := slices.Clone(pvmHostSupported)
	for i := range MaxCPUIDEntries {
		big = append(big, CPUIDEntry{Function: 0x20000000 + uint32(i)})
	}
	noLeaf1 := slices.DeleteFunc(slices.Clone(intelSupported), func(e CPUIDEntry) bool { return e.Function == 1 })
	noExt8 := slices.DeleteFunc(slices.Clone(intelSupported), func(e CPUIDEntry) bool { return e.Function == leafAddrSizes })
	pvm, err := TemplateByName(TemplatePVMHost)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		supported []CPUIDEntry
		cpu       int
		topo      Topology
		tmpl      *Template
		want      error
	}{
		{"no cpus", intelSupported, 0, Topology{}, nil, ErrInvalidTopology},
		{"index past end", intelSupported, 2, Topology{CPUs: 2}, nil, ErrInvalidTopology},
		{"negative index", intelSupported, -1, Topology{CPUs: 2}, nil, ErrInvalidTopology},
		{"uneven sockets", intelSupported, 0, Topology{CPUs: 3, Sockets: 2}, nil, ErrInvalidTopology},
		{"empty table", nil, 0, Topology{CPUs: 1}, nil, ErrMissingLeaf},
		{"no leaf 1", noLeaf1, 0, Topology{CPUs: 1}, nil, ErrMissingLeaf},
		{"set bits on missing leaf", noExt8, 0, Topology{CPUs: 1}, pvm, ErrMissingLeaf},
		{"bad register", intelSupported, 0, Topology{CPUs: 1},
			&Template{Name: "bad", Modifiers: []CPUIDModifier{{Function: 1, Register: 9, Mask: 1}}}, ErrInvalidModifier},
		{"value outside mask", intelSupported, 0, Topology{CPUs: 1},
			&Template{Name: "bad", Modifiers: []CPUIDModifier{{Function: 1, Register: ECX, Mask: 1, Value: 3}}}, ErrInvalidModifier},
		{"too many entries", big, 0, Topology{CPUs: 1}, nil, ErrTooManyEntries},
	} {
		_, err := BuildCPUID(tc.supported, tc.cpu, tc.topo, tc.tmpl)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestTopology(t *testing.T) {
	for _, tc := range []struct {
		topo Topology
		want []uint32
	}{
		{Topology{CPUs: 4}, []uint32{0, 1, 2, 3}},
		{Topology{CPUs: 3}, []uint32{0, 1, 2}},
		{Topology{CPUs: 8, ThreadsPerCore: 2, Sockets: 2}, []uint32{0, 1, 2, 3, 4, 5, 6, 7}},
		{Topology{CPUs: 6, Sockets: 2}, []uint32{0, 1, 2, 4, 5, 6}},
		{Topology{CPUs: 6, ThreadsPerCore: 2}, []uint32{0, 1, 2, 3, 4, 5}},
		{Topology{CPUs: 12, ThreadsPerCore: 2, Sockets: 2}, []uint32{0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13}},
	} {
		if err := tc.topo.Validate(); err != nil {
			t.Fatalf("%+v: %v", tc.topo, err)
		}
		for i, want := range tc.want {
			if got := tc.topo.APICID(i); got != want {
				t.Errorf("%+v: APIC ID of %d = %d, want %d", tc.topo, i, got, want)
			}
		}
	}
	for _, bad := range []Topology{
		{CPUs: 0}, {CPUs: -1}, {CPUs: MaxCPUs + 1}, {CPUs: 4, ThreadsPerCore: 3},
		{CPUs: 2, ThreadsPerCore: 2, Sockets: 2}, {CPUs: 4, Sockets: -2}, {CPUs: 4, ThreadsPerCore: -1},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidTopology) {
			t.Errorf("%+v: error %v, want ErrInvalidTopology", bad, err)
		}
		if id := bad.APICID(0); id != 0 {
			t.Errorf("%+v: APIC ID %d for invalid topology", bad, id)
		}
	}
	if id := (Topology{CPUs: 2}).APICID(5); id != 0 {
		t.Errorf("APIC ID %d for out-of-range index", id)
	}
}

func TestSetField(t *testing.T) {
	x := uint32(0xffffffff)
	setField(&x, 16, 23, 0x1ff) // saturates
	if x != 0xffffffff {
		t.Errorf("saturated field: %#x", x)
	}
	setField(&x, 8, 15, 0x12)
	if x != 0xffff12ff || field(x, 8, 15) != 0x12 {
		t.Errorf("field: %#x", x)
	}
	setField(&x, 0, 31, 7)
	if x != 7 || field(x, 0, 31) != 7 {
		t.Errorf("whole register: %#x", x)
	}
}

// The invariant TSC is hidden so the guest keeps kvm-clock, which Linux
// ranks below an invariant TSC.
func TestInvariantTSCHidden(t *testing.T) {
	var has bool
	for _, e := range pvmHostSupported {
		has = has || (e.Function == 0x80000007 && e.EDX&(1<<8) != 0)
	}
	if !has {
		t.Fatal("the captured host table no longer reports an invariant TSC")
	}
	out, err := BuildCPUID(pvmHostSupported, 0, Topology{CPUs: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range out {
		if e.Function == 0x80000007 && e.EDX&(1<<8) != 0 {
			t.Errorf("invariant TSC still exposed: %#x", e.EDX)
		}
	}
}
