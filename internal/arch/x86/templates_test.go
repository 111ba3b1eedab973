package x86

import (
	"errors"
	"slices"
	"testing"
)

func template(t *testing.T, name string) *Template {
	t.Helper()
	tmpl, err := TemplateByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.Name != name {
		t.Fatalf("TemplateByName(%q).Name = %q", name, tmpl.Name)
	}
	return tmpl
}

func TestTemplateNames(t *testing.T) {
	want := []string{"baseline-v2", "baseline-v3", "host", "pvm-host"}
	if got := TemplateNames(); !slices.Equal(got, want) {
		t.Fatalf("TemplateNames() = %v, want %v", got, want)
	}
	for _, name := range want {
		if err := template(t, name).Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := TemplateByName("T2"); !errors.Is(err, ErrUnknownTemplate) {
		t.Errorf("unknown template: error %v", err)
	}
	// Each call returns a fresh copy.
	a := template(t, TemplatePVMHost)
	a.Modifiers[0].Mask = 0
	if b := template(t, TemplatePVMHost); b.Modifiers[0].Mask == 0 {
		t.Error("TemplateByName shares state between calls")
	}
}

func TestHostTemplateIsNil(t *testing.T) {
	a := build(t, intelSupported, 1, Topology{CPUs: 2}, nil)
	b := build(t, intelSupported, 1, Topology{CPUs: 2}, template(t, TemplateHost))
	if !slices.Equal(a, b) {
		t.Error("host template differs from no template")
	}
}

func TestPVMHostTemplate(t *testing.T) {
	// Start from a table where KVM reports neither feature.
	sup := slices.Clone(pvmHostSupported)
	cpuidTable(sup).find(1, 0).ECX &^= bitTSCDeadline
	cpuidTable(sup).find(leafAddrSizes, 0).EBX &^= bitXSAVEERPTR
	plain := build(t, sup, 0, Topology{CPUs: 1}, nil)
	if lookup(t, plain, 1, 0).ECX&bitTSCDeadline != 0 || lookup(t, plain, leafAddrSizes, 0).EBX&bitXSAVEERPTR != 0 {
		t.Fatal("host template exposes features KVM does not report")
	}
	out := build(t, sup, 0, Topology{CPUs: 1}, template(t, TemplatePVMHost))
	if lookup(t, out, 1, 0).ECX&bitTSCDeadline == 0 {
		t.Error("pvm-host: TSC-deadline hidden")
	}
	if lookup(t, out, leafAddrSizes, 0).EBX&bitXSAVEERPTR == 0 {
		t.Error("pvm-host: XSAVEERPTR hidden")
	}
	// Nothing else changes.
	for i := range out {
		if out[i].Function == 1 || out[i].Function == leafAddrSizes {
			continue
		}
		if out[i] != plain[i] {
			t.Errorf("pvm-host changed %+v to %+v", plain[i], out[i])
		}
	}
}

func TestBaselineV3(t *testing.T) {
	out := build(t, intelSupported, 0, Topology{CPUs: 2}, template(t, TemplateBaselineV3))
	l1 := lookup(t, out, 1, 0)
	if want := uint32(bitSSE3 | bitSSSE3 | bitFMA | bitCX16 | bitSSE41 | bitSSE42 | bitX2APIC |
		bitMOVBE | bitPOPCNT | bitTSCDeadline | bitXSAVE | bitAVX | bitF16C | bitHypervisor); l1.ECX != want {
		t.Errorf("leaf 1 ecx %#x, want %#x", l1.ECX, want)
	}
	if l1.EDX != 0x0f8bfbff&^(1<<27)|bitHTT { // SS is not part of the baseline
		t.Errorf("leaf 1 edx %#x", l1.EDX)
	}
	l7 := lookup(t, out, 7, 0)
	if want := uint32(0xd19f4fbb & (bitBMI1 | bitAVX2 | bitFDPExcptnOnly | bitBMI2 | bitZeroFCSFDS)); l7.EBX != want {
		t.Errorf("leaf 7 ebx %#x, want %#x", l7.EBX, want)
	}
	if l7.ECX != 0 || l7.EDX != 0xbc000400 {
		t.Errorf("leaf 7 ecx %#x edx %#x", l7.ECX, l7.EDX)
	}
	if e := lookup(t, out, 7, 1); e.EAX != 0 {
		t.Errorf("leaf 7.1 eax %#x", e.EAX)
	}
	x := lookup(t, out, leafXSAVE, 0)
	if x.EAX != xfeatureX87|xfeatureSSE|xfeatureYMM || x.EDX != 0 || x.ECX != 0x340 {
		t.Errorf("leaf 0xD.0 = %+v", x)
	}
	if e := lookup(t, out, leafXSAVE, 1); e.EAX != bitXSAVEOPT|bitXSAVEC|bitXGETBV1 {
		t.Errorf("leaf 0xD.1 eax %#x", e.EAX)
	}
	for _, e := range out {
		if e.Function == leafXSAVE && e.Index > 2 {
			t.Errorf("leaf 0xD.%d kept", e.Index)
		}
	}
	if e := lookup(t, out, leafExtFeatures1, 0); e.ECX != bitLAHFLM|bitABM || e.EDX != 0x2c100800 {
		t.Errorf("leaf 0x80000001 = %+v", e)
	}
}

func TestBaselineV2(t *testing.T) {
	for _, sup := range [][]CPUIDEntry{intelSupported, pvmHostSupported} {
		out := build(t, sup, 0, Topology{CPUs: 1}, template(t, TemplateBaselineV2))
		l1 := lookup(t, out, 1, 0)
		if l1.ECX&(bitXSAVE|bitAVX|bitFMA|bitMOVBE|bitF16C|bitPCLMULQDQ) != 0 {
			t.Errorf("leaf 1 ecx %#x exposes v3 or non-baseline features", l1.ECX)
		}
		if l7 := lookup(t, out, 7, 0); l7.EBX&(bitAVX2|bitBMI1|bitBMI2|bitAVX512F) != 0 {
			t.Errorf("leaf 7 ebx %#x", l7.EBX)
		}
		if x := lookup(t, out, leafXSAVE, 0); x.EAX != xfeatureX87|xfeatureSSE || x.ECX != xsaveLegacyHeader {
			t.Errorf("leaf 0xD.0 = %+v", x)
		}
		if e := lookup(t, out, leafExtFeatures1, 0); e.ECX&bitABM != 0 {
			t.Errorf("LZCNT exposed: %#x", e.ECX)
		}
	}
	out := build(t, intelSupported, 0, Topology{CPUs: 1}, template(t, TemplateBaselineV2))
	if l1 := lookup(t, out, 1, 0); l1.ECX&(bitSSE42|bitPOPCNT|bitCX16) != bitSSE42|bitPOPCNT|bitCX16 {
		t.Errorf("leaf 1 ecx %#x lacks v2 features", l1.ECX)
	}
	if e := lookup(t, out, leafExtFeatures1, 0); e.ECX&bitLAHFLM == 0 {
		t.Error("LAHF/SAHF hidden")
	}
}

func TestTemplateDependencies(t *testing.T) {
	noAVX512 := &Template{Name: "no-avx512", Modifiers: []CPUIDModifier{
		ClearBits(leafExtFeatures, 0, EBX, bitAVX512F),
	}}
	out := build(t, intelSupported, 0, Topology{CPUs: 1}, noAVX512)
	l7 := lookup(t, out, 7, 0)
	if l7.EBX&(bitAVX512DQ|bitAVX512CD|bitAVX512BW|bitAVX512VL) != 0 || l7.ECX&bitAVX512VNNI != 0 {
		t.Errorf("AVX-512 subfeatures kept: %+v", l7)
	}
	if l7.EBX&bitAVX2 == 0 {
		t.Error("AVX2 hidden")
	}
	if e := lookup(t, out, 7, 1); e.EAX&bitAVX512BF16 != 0 {
		t.Error("AVX512_BF16 kept")
	}
	x := lookup(t, out, leafXSAVE, 0)
	if x.EAX != 0x207 || x.ECX != 0xa88 {
		t.Errorf("leaf 0xD.0 = %+v, want AVX-512 state gone, PKRU kept", x)
	}

	// Hiding the XSAVE state hides the instructions that need it.
	noZMM := &Template{Name: "no-zmm", Modifiers: []CPUIDModifier{ClearBits(leafXSAVE, 0, EAX, xfeatureHi16ZMM)}}
	out = build(t, intelSupported, 0, Topology{CPUs: 1}, noZMM)
	if lookup(t, out, 7, 0).EBX&bitAVX512F != 0 {
		t.Error("AVX512F kept without its XSAVE state")
	}

	noAVX := &Template{Name: "no-avx", Modifiers: []CPUIDModifier{ClearBits(1, 0, ECX, bitAVX)}}
	out = build(t, intelSupported, 0, Topology{CPUs: 1}, noAVX)
	if lookup(t, out, 1, 0).ECX&(bitFMA|bitF16C) != 0 || lookup(t, out, 7, 0).EBX&(bitAVX2|bitAVX512F) != 0 {
		t.Error("AVX dependents kept")
	}
	if x := lookup(t, out, leafXSAVE, 0); x.EAX != 0x203 || x.ECX != 0xa88 {
		t.Errorf("leaf 0xD.0 = %+v", x)
	}
}

func TestTemplateAddsFeatures(t *testing.T) {
	steal := &Template{Name: "steal", Modifiers: []CPUIDModifier{
		SetBits(LeafKVMFeatures, 0, EAX, KVMFeatureStealTime),
		// Index is ignored for leaves that do not depend on it.
		SetBits(leafExtFeatures1, 7, ECX, bitSVM),
	}}
	out := build(t, pvmHostSupported, 0, Topology{CPUs: 1}, steal)
	if got := lookup(t, out, LeafKVMFeatures, 0).EAX; got != DefaultKVMFeatures|KVMFeatureStealTime {
		t.Errorf("KVM features %#x", got)
	}
	if lookup(t, out, leafExtFeatures1, 0).ECX&bitSVM == 0 {
		t.Error("SVM not set")
	}
}

func TestModifierHelpers(t *testing.T) {
	if m := KeepOnly(1, 0, EDX, 0xff); m.Mask != 0xffffff00 || m.Value != 0 {
		t.Errorf("KeepOnly = %+v", m)
	}
	if m := SetBits(1, 0, EDX, 0x10); m.Mask != 0x10 || m.Value != 0x10 {
		t.Errorf("SetBits = %+v", m)
	}
	for r, want := range map[Register]string{EAX: "eax", EBX: "ebx", ECX: "ecx", EDX: "edx", 7: "Register(7)"} {
		if r.String() != want {
			t.Errorf("%d.String() = %q", r, r.String())
		}
	}
}
