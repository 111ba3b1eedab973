package x86

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// CPUIDEntry is one CPUID result, the fields of KVM's kvm_cpuid_entry2
// without its padding.
type CPUIDEntry struct {
	Function, Index, Flags, EAX, EBX, ECX, EDX uint32
}

// CPUIDFlagSignificantIndex marks an entry whose result depends on the
// subleaf in ECX (KVM_CPUID_FLAG_SIGNIFCANT_INDEX).
const CPUIDFlagSignificantIndex = 1

// MaxCPUIDEntries is the most entries KVM_SET_CPUID2 accepts.
const MaxCPUIDEntries = 256

// Errors returned by BuildCPUID.
var (
	// ErrMissingLeaf reports that KVM's supported table lacks a leaf the
	// guest table cannot do without.
	ErrMissingLeaf = errors.New("CPUID leaf missing from KVM's supported list")
	// ErrTooManyEntries reports a table larger than KVM accepts.
	ErrTooManyEntries = errors.New("too many CPUID entries")
)

// BuildCPUID turns the host's KVM_GET_SUPPORTED_CPUID entries into the
// CPUID table of vCPU cpuIndex: it describes the topology, hides what the
// VMM does not emulate (PMU unless the template keeps it, nested
// virtualization, turbo and power management), exposes the KVM
// paravirtual leaves with DefaultKVMFeatures, applies the template (nil
// means "host") and finally clears features whose prerequisites are
// hidden. The input is not modified.
func BuildCPUID(supported []CPUIDEntry, cpuIndex int, topo Topology, tmpl *Template) ([]CPUIDEntry, error) {
	l, err := topo.layout()
	if err != nil {
		return nil, err
	}
	if cpuIndex < 0 || cpuIndex >= l.cpus {
		return nil, fmt.Errorf("x86: vCPU index %d outside 0..%d: %w", cpuIndex, l.cpus-1, ErrInvalidTopology)
	}
	if tmpl == nil {
		tmpl = hostTemplate()
	}
	if err := tmpl.Validate(); err != nil {
		return nil, err
	}
	t := cpuidTable(slices.Clone(supported))
	for _, leaf := range []uint32{leafVendor, leafFeatures} {
		if t.find(leaf, 0) == nil {
			return nil, fmt.Errorf("x86: building CPUID: leaf %#x: %w", leaf, ErrMissingLeaf)
		}
	}
	n := normalizer{t: &t, l: l, cpu: cpuIndex, apicID: l.apicID(cpuIndex), vendor: t.vendor(), pmu: tmpl.PMU}
	n.run()
	if err := t.apply(tmpl.Modifiers); err != nil {
		return nil, fmt.Errorf("x86: CPU template %q: %w", tmpl.Name, err)
	}
	t.clearDependents()
	t.fixXSAVESizes()
	if len(t) > MaxCPUIDEntries {
		return nil, fmt.Errorf("x86: CPUID table has %d entries, KVM takes at most %d: %w", len(t), MaxCPUIDEntries, ErrTooManyEntries)
	}
	return t, nil
}

// cpuidTable is a CPUID table under construction.
type cpuidTable []CPUIDEntry

// matches reports whether e answers CPUID(fn, index).
func (e *CPUIDEntry) matches(fn, index uint32) bool {
	return e.Function == fn && (e.Flags&CPUIDFlagSignificantIndex == 0 || e.Index == index)
}

// find returns the entry answering CPUID(fn, index), or nil.
func (t cpuidTable) find(fn, index uint32) *CPUIDEntry {
	for i := range t {
		if t[i].matches(fn, index) {
			return &t[i]
		}
	}
	return nil
}

// subleaves returns every entry of leaf fn, in table order.
func (t cpuidTable) subleaves(fn uint32) []*CPUIDEntry {
	var out []*CPUIDEntry
	for i := range t {
		if t[i].Function == fn {
			out = append(out, &t[i])
		}
	}
	return out
}

// removeIf deletes the entries for which drop returns true.
func (t *cpuidTable) removeIf(drop func(*CPUIDEntry) bool) {
	*t = slices.DeleteFunc(*t, func(e CPUIDEntry) bool { return drop(&e) })
}

// maxBasic and maxExtended are the highest leaves the table advertises.
func (t cpuidTable) maxBasic() uint32 {
	if e := t.find(leafVendor, 0); e != nil {
		return e.EAX
	}
	return 0
}

func (t cpuidTable) maxExtended() uint32 {
	if e := t.find(leafExtMax, 0); e != nil {
		return e.EAX
	}
	return 0
}

// cpuVendor selects vendor-specific leaves.
type cpuVendor int

const (
	vendorOther cpuVendor = iota
	vendorIntel
	vendorAMD // also Hygon, which follows AMD's leaves
)

func (t cpuidTable) vendor() cpuVendor {
	e := t.find(leafVendor, 0)
	if e == nil {
		return vendorOther
	}
	var b [12]byte
	binary.LittleEndian.PutUint32(b[0:], e.EBX)
	binary.LittleEndian.PutUint32(b[4:], e.EDX)
	binary.LittleEndian.PutUint32(b[8:], e.ECX)
	switch string(b[:]) {
	case "GenuineIntel":
		return vendorIntel
	case "AuthenticAMD", "HygonGenuine":
		return vendorAMD
	}
	return vendorOther
}

// reg returns a pointer to register r of e.
func (e *CPUIDEntry) reg(r Register) *uint32 {
	switch r {
	case EAX:
		return &e.EAX
	case EBX:
		return &e.EBX
	case ECX:
		return &e.ECX
	default:
		return &e.EDX
	}
}

// setField stores v into bits [lo, hi] of *x, saturating at the field's
// maximum.
func setField(x *uint32, lo, hi uint, v uint32) {
	width := hi - lo + 1
	limit := uint32(1)<<width - 1
	v = min(v, limit)
	*x = *x&^(limit<<lo) | v<<lo
}

// field returns bits [lo, hi] of x.
func field(x uint32, lo, hi uint) uint32 {
	return x >> lo & (uint32(1)<<(hi-lo+1) - 1)
}
