package x86

// featureBits names bits of one CPUID register.
type featureBits struct {
	fn, index uint32
	reg       Register
	mask      uint32
}

// dependency clears dependents when any bit of needs is clear (or its
// leaf is missing).
type dependency struct {
	needs      featureBits
	dependents []featureBits
}

const allBits = ^uint32(0)

// dependencies lists prerequisites in an order where a rule never
// re-enables work for an earlier one: XSAVE, then AVX and its XSAVE
// state, then AVX-512, then AMX.
var dependencies = []dependency{
	{featureBits{leafFeatures, 0, ECX, bitXSAVE}, []featureBits{
		{leafFeatures, 0, ECX, bitOSXSAVE | bitAVX},
		{leafXSAVE, 0, EAX, ^uint32(xfeatureX87 | xfeatureSSE)},
		{leafXSAVE, 0, EDX, allBits},
		{leafXSAVE, 1, EAX, allBits},
		{leafXSAVE, 1, ECX, allBits},
		{leafXSAVE, 1, EDX, allBits},
	}},
	{featureBits{leafXSAVE, 0, EAX, xfeatureYMM}, []featureBits{
		{leafFeatures, 0, ECX, bitAVX},
	}},
	{featureBits{leafFeatures, 0, ECX, bitAVX}, []featureBits{
		{leafFeatures, 0, ECX, bitFMA | bitF16C},
		{leafExtFeatures, 0, EBX, bitAVX2 | bitAVX512F},
		{leafExtFeatures, 0, ECX, bitVAES | bitVPCLMULQDQ},
		{leafExtFeatures, 1, EAX, bitAVXVNNI},
		{leafXSAVE, 0, EAX, xfeatureYMM},
	}},
	{featureBits{leafXSAVE, 0, EAX, xfeatureAVX512}, []featureBits{
		{leafExtFeatures, 0, EBX, bitAVX512F},
	}},
	{featureBits{leafExtFeatures, 0, EBX, bitAVX512F}, []featureBits{
		{leafExtFeatures, 0, EBX, bitAVX512DQ | bitAVX512IFMA | bitAVX512PF | bitAVX512ER |
			bitAVX512CD | bitAVX512BW | bitAVX512VL},
		{leafExtFeatures, 0, ECX, bitAVX512VBMI | bitAVX512VBMI2 | bitAVX512VNNI |
			bitAVX512BITALG | bitAVX512VPOPCNTDQ},
		{leafExtFeatures, 0, EDX, bitAVX5124VNNIW | bitAVX5124FMAPS | bitAVX512VP2Intersect | bitAVX512FP16},
		{leafExtFeatures, 1, EAX, bitAVX512BF16},
		{leafXSAVE, 0, EAX, xfeatureAVX512},
	}},
	{featureBits{leafXSAVE, 0, EAX, xfeatureAMX}, []featureBits{
		{leafExtFeatures, 0, EDX, bitAMXTile},
	}},
	{featureBits{leafExtFeatures, 0, EDX, bitAMXTile}, []featureBits{
		{leafExtFeatures, 0, EDX, bitAMXBF16 | bitAMXInt8},
		{leafXSAVE, 0, EAX, xfeatureAMX},
	}},
}

// has reports whether every bit of f is set.
func (t cpuidTable) has(f featureBits) bool {
	e := t.find(f.fn, f.index)
	return e != nil && *e.reg(f.reg)&f.mask == f.mask
}

// clear clears the bits of f where its leaf exists.
func (t cpuidTable) clear(f featureBits) {
	if e := t.find(f.fn, f.index); e != nil {
		*e.reg(f.reg) &^= f.mask
	}
}

// clearDependents hides every feature whose prerequisite is hidden, so a
// template that hides AVX also hides AVX2, AVX-512 and their XSAVE state.
func (t cpuidTable) clearDependents() {
	for _, d := range dependencies {
		if t.has(d.needs) {
			continue
		}
		for _, f := range d.dependents {
			t.clear(f)
		}
	}
}

// fixXSAVESizes drops the leaf 0xD subleaves of state components the
// guest cannot enable and recomputes the XSAVE area size for all enabled
// user components (leaf 0xD.0 ECX). KVM updates EBX itself as the guest
// sets XCR0.
func (t *cpuidTable) fixXSAVESizes() {
	e := t.find(leafXSAVE, 0)
	if e == nil {
		return
	}
	xcr0 := uint64(e.EDX)<<32 | uint64(e.EAX)
	var xss uint64
	if e1 := t.find(leafXSAVE, 1); e1 != nil {
		xss = uint64(e1.EDX)<<32 | uint64(e1.ECX)
	}
	component := func(e *CPUIDEntry) bool { return e.Function == leafXSAVE && e.Index >= 2 && e.Index < 64 }
	t.removeIf(func(e *CPUIDEntry) bool {
		return component(e) && (xcr0|xss)&(1<<e.Index) == 0
	})
	size := uint32(xsaveLegacyHeader)
	for _, c := range t.subleaves(leafXSAVE) {
		if component(c) && xcr0&(1<<c.Index) != 0 && c.EBX+c.EAX > size {
			size = c.EBX + c.EAX // offset plus size
		}
	}
	if e := t.find(leafXSAVE, 0); e != nil { // the table may have moved
		e.ECX = size
		e.EBX = min(e.EBX, size)
	}
}
