package x86

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Errors about CPU templates.
var (
	ErrUnknownTemplate = errors.New("unknown CPU template")
	ErrInvalidModifier = errors.New("invalid CPUID modifier")
)

// Register names one of the four CPUID output registers.
type Register uint8

// The CPUID output registers.
const (
	EAX Register = iota
	EBX
	ECX
	EDX
)

func (r Register) String() string {
	switch r {
	case EAX:
		return "eax"
	case EBX:
		return "ebx"
	case ECX:
		return "ecx"
	case EDX:
		return "edx"
	}
	return fmt.Sprintf("Register(%d)", uint8(r))
}

// CPUIDModifier forces bits of one CPUID register: the bits set in Mask
// take their value from Value; the others keep what normalization
// produced. For a leaf whose entries do not depend on the subleaf, Index
// is ignored.
type CPUIDModifier struct {
	Function, Index uint32
	Register        Register
	Mask, Value     uint32
}

// SetBits returns a modifier that sets bits.
func SetBits(fn, index uint32, r Register, bits uint32) CPUIDModifier {
	return CPUIDModifier{Function: fn, Index: index, Register: r, Mask: bits, Value: bits}
}

// ClearBits returns a modifier that clears bits.
func ClearBits(fn, index uint32, r Register, bits uint32) CPUIDModifier {
	return CPUIDModifier{Function: fn, Index: index, Register: r, Mask: bits}
}

// KeepOnly returns a modifier that clears every bit not in allowed.
func KeepOnly(fn, index uint32, r Register, allowed uint32) CPUIDModifier {
	return ClearBits(fn, index, r, ^allowed)
}

// Validate reports a register out of range or Value bits outside Mask.
func (m CPUIDModifier) Validate() error {
	if m.Register > EDX {
		return fmt.Errorf("x86: CPUID %#x.%d: register %v: %w", m.Function, m.Index, m.Register, ErrInvalidModifier)
	}
	if m.Value&^m.Mask != 0 {
		return fmt.Errorf("x86: CPUID %#x.%d %v: value %#x has bits outside mask %#x: %w",
			m.Function, m.Index, m.Register, m.Value, m.Mask, ErrInvalidModifier)
	}
	return nil
}

// Template is a named set of CPUID changes applied after normalization,
// used to hide features (a stable baseline for migration between hosts)
// or to force features on.
type Template struct {
	Name        string
	Description string
	Modifiers   []CPUIDModifier
	// PMU passes KVM's performance-monitoring leaf (0xA) and PDCM
	// through; otherwise the guest sees no PMU.
	PMU bool
}

// Validate checks every modifier.
func (t *Template) Validate() error {
	for _, m := range t.Modifiers {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("x86: CPU template %q: %w", t.Name, err)
		}
	}
	return nil
}

// apply runs the modifiers in order. A modifier that only clears bits of
// a leaf the table lacks does nothing; one that sets bits there fails,
// since the guest could not see them.
func (t cpuidTable) apply(mods []CPUIDModifier) error {
	for _, m := range mods {
		found := false
		for i := range t {
			if t[i].matches(m.Function, m.Index) {
				r := t[i].reg(m.Register)
				*r = *r&^m.Mask | m.Value
				found = true
			}
		}
		if !found && m.Value != 0 {
			return fmt.Errorf("setting %v bits %#x of leaf %#x.%d: %w", m.Register, m.Value, m.Function, m.Index, ErrMissingLeaf)
		}
	}
	return nil
}

// Template names.
const (
	TemplateHost       = "host"
	TemplatePVMHost    = "pvm-host"
	TemplateBaselineV2 = "baseline-v2"
	TemplateBaselineV3 = "baseline-v3"
)

var templates = map[string]func() *Template{
	TemplateHost:       hostTemplate,
	TemplatePVMHost:    pvmHostTemplate,
	TemplateBaselineV2: func() *Template { return baselineTemplate(2) },
	TemplateBaselineV3: func() *Template { return baselineTemplate(3) },
}

// TemplateByName returns a fresh copy of a built-in template.
func TemplateByName(name string) (*Template, error) {
	mk, ok := templates[name]
	if !ok {
		return nil, fmt.Errorf("x86: CPU template %q (known: %v): %w", name, TemplateNames(), ErrUnknownTemplate)
	}
	return mk(), nil
}

// TemplateNames lists the built-in templates, sorted.
func TemplateNames() []string {
	return slices.Sorted(maps.Keys(templates))
}

func hostTemplate() *Template {
	return &Template{
		Name:        TemplateHost,
		Description: "everything KVM supports, after normalization",
	}
}

// pvmHostTemplate suits hosts whose KVM re-enables host instruction-set
// features whatever the VMM sets: it hides nothing and forces on the
// emulated features a guest kernel needs there.
func pvmHostTemplate() *Template {
	return &Template{
		Name:        TemplatePVMHost,
		Description: "host features plus TSC-deadline and XSAVEERPTR, for software-assisted nested KVM",
		Modifiers: []CPUIDModifier{
			SetBits(leafFeatures, 0, ECX, bitTSCDeadline|bitX2APIC),
			// FXSAVE always saves FOP/FIP/FDP: spares the guest the
			// AMD FXSAVE leak workaround, which the emulator cannot run.
			SetBits(leafAddrSizes, 0, EBX, bitXSAVEERPTR),
		},
	}
}

// baselineTemplate keeps only the instruction-set extensions of the
// x86-64 psABI microarchitecture level (2 or 3) plus system features
// (APIC, x2APIC, TSC-deadline, NX, 1 GiB pages, ...), and passes
// speculation-control bits through so guests can still mitigate.
// Extensions outside the levels (AES, SHA, RDRAND, AVX-512, AMX, ...)
// are hidden.
func baselineTemplate(level int) *Template {
	leaf1ECX := uint32(bitSSE3 | bitSSSE3 | bitCX16 | bitSSE41 | bitSSE42 | bitPOPCNT |
		bitX2APIC | bitTSCDeadline | bitHypervisor)
	leaf7EBX := uint32(bitFDPExcptnOnly | bitZeroFCSFDS) // "feature removed" bits
	ext1ECX := uint32(bitLAHFLM | bitCmpLegacy | bitTopoExt)
	xcr0 := uint32(xfeatureX87 | xfeatureSSE)
	var xsave1EAX uint32
	if level >= 3 {
		leaf1ECX |= bitFMA | bitMOVBE | bitXSAVE | bitOSXSAVE | bitAVX | bitF16C
		leaf7EBX |= bitBMI1 | bitAVX2 | bitBMI2
		ext1ECX |= bitABM
		xcr0 |= xfeatureYMM
		xsave1EAX = bitXSAVEOPT | bitXSAVEC | bitXGETBV1
	}
	const leaf7EDX = bitMDClear | bitSpecCtrl | bitSTIBP | bitFlushL1D |
		bitArchCapabilities | bitCoreCapabilities | bitSSBD
	// AMD repeats most leaf 1 EDX bits in 0x80000001 EDX.
	const ext1EDX = leaf1EDXBase&^(bitCLFSH|bitHTT|1<<25|1<<26) |
		bitSYSCALL | bitNX | bitGBPages | bitRDTSCP | bitLM
	return &Template{
		Name:        fmt.Sprintf("baseline-v%d", level),
		Description: fmt.Sprintf("x86-64-v%d instruction set; other extensions hidden", level),
		Modifiers: []CPUIDModifier{
			KeepOnly(leafFeatures, 0, ECX, leaf1ECX),
			KeepOnly(leafFeatures, 0, EDX, leaf1EDXBase),
			KeepOnly(leafExtFeatures, 0, EBX, leaf7EBX),
			KeepOnly(leafExtFeatures, 0, ECX, 0),
			KeepOnly(leafExtFeatures, 0, EDX, leaf7EDX),
			KeepOnly(leafExtFeatures, 1, EAX, 0),
			KeepOnly(leafXSAVE, 0, EAX, xcr0),
			KeepOnly(leafXSAVE, 0, EDX, 0),
			KeepOnly(leafXSAVE, 1, EAX, xsave1EAX),
			KeepOnly(leafXSAVE, 1, ECX, 0),
			KeepOnly(leafXSAVE, 1, EDX, 0),
			KeepOnly(leafExtFeatures1, 0, ECX, ext1ECX),
			KeepOnly(leafExtFeatures1, 0, EDX, ext1EDX),
		},
	}
}
