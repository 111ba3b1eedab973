package x86

import "encoding/binary"

// normalizer rewrites KVM's supported table into one vCPU's view.
type normalizer struct {
	t      *cpuidTable
	l      layout
	cpu    int
	apicID uint32
	vendor cpuVendor
	pmu    bool
}

func (n *normalizer) run() {
	n.features()
	n.cacheParams()
	n.power()
	n.extFeatures()
	if !n.pmu {
		n.clearPMU()
	}
	n.topology()
	n.extFeatures1()
	n.powerMgmt()
	n.addrSizes()
	if n.vendor == vendorAMD {
		n.amdCacheTopology()
		n.amdExtAPICID()
	}
	n.kvmLeaves()
}

// features fills leaf 1: APIC ID, logical processor count, CLFLUSH size,
// the hypervisor bit and HTT; it hides VMX (no nested virtualization)
// and, without a PMU, PDCM. x2APIC and TSC-deadline stay as KVM reports.
func (n *normalizer) features() {
	e := n.t.find(leafFeatures, 0)
	if e == nil {
		return
	}
	setField(&e.EBX, 24, 31, n.apicID&0xff)
	setField(&e.EBX, 16, 23, n.l.packageIDs()) // saturates at 255
	if field(e.EBX, 8, 15) == 0 && e.EDX&bitCLFSH != 0 {
		setField(&e.EBX, 8, 15, 8) // 64-byte cache lines
	}
	e.ECX |= bitHypervisor
	e.ECX &^= bitVMX
	if !n.pmu {
		e.ECX &^= bitPDCM
	}
	if n.l.threadsPerPackage() > 1 {
		e.EDX |= bitHTT
	} else {
		e.EDX &^= bitHTT
	}
}

// cacheParams fills the sharing fields of leaf 4 (Intel): L1 and L2 are
// per core, L3 per package.
func (n *normalizer) cacheParams() {
	n.cacheSharing(leafCacheParams, true)
}

// amdCacheTopology fills the sharing fields of leaf 0x8000001D.
func (n *normalizer) amdCacheTopology() {
	n.cacheSharing(leafAMDCacheTopo, false)
}

// cacheSharing sets EAX[25:14] (logical processors sharing the cache,
// minus one) of each cache described by leaf fn and, for leaf 4, EAX[31:26]
// (core IDs per package, minus one).
func (n *normalizer) cacheSharing(fn uint32, coresField bool) {
	for _, e := range n.t.subleaves(fn) {
		if field(e.EAX, 0, 4) == 0 { // cache type 0: no more caches
			continue
		}
		switch field(e.EAX, 5, 7) { // cache level
		case 1, 2:
			setField(&e.EAX, 14, 25, 1<<n.l.smtBits-1)
		default:
			setField(&e.EAX, 14, 25, n.l.packageIDs()-1)
		}
		if coresField {
			setField(&e.EAX, 26, 31, 1<<n.l.coreBits-1)
		}
	}
}

// power keeps only ARAT (the APIC timer runs in deep C-states) in leaf 6:
// no turbo, no thermal sensors, no hardware P-states.
func (n *normalizer) power() {
	if e := n.t.find(leafPower, 0); e != nil {
		e.EAX &= bitARAT
		e.EBX, e.ECX, e.EDX = 0, 0, 0
	}
}

// extFeatures hides WAITPKG (its control MSR is not handled) and, on
// AMD, ARCH_CAPABILITIES, an Intel MSR that AMD hosts cannot back.
func (n *normalizer) extFeatures() {
	e := n.t.find(leafExtFeatures, 0)
	if e == nil {
		return
	}
	e.ECX &^= bitWAITPKG
	if n.vendor == vendorAMD {
		e.EDX &^= bitArchCapabilities
	}
}

// clearPMU zeroes leaf 0xA: the guest sees no architectural PMU.
func (n *normalizer) clearPMU() {
	if e := n.t.find(leafPMU, 0); e != nil {
		e.EAX, e.EBX, e.ECX, e.EDX = 0, 0, 0, 0
	}
}

// topology replaces leaf 0xB (and 0x1F where KVM reports it) with the
// SMT and core levels of the layout and this vCPU's x2APIC ID.
func (n *normalizer) topology() {
	levels := n.topologyLevels()
	for _, fn := range []uint32{leafTopology, leafTopologyV2} {
		if fn == leafTopology && n.t.maxBasic() < leafTopology {
			continue
		}
		if fn == leafTopologyV2 && (n.t.maxBasic() < leafTopologyV2 || len(n.t.subleaves(fn)) == 0) {
			continue
		}
		n.t.removeIf(func(e *CPUIDEntry) bool { return e.Function == fn })
		for _, lv := range levels {
			lv.Function = fn
			*n.t = append(*n.t, lv)
		}
	}
}

// Level types of leaves 0xB and 0x1F, ECX[15:8].
const (
	levelInvalid = 0
	levelSMT     = 1
	levelCore    = 2
)

func (n *normalizer) topologyLevels() []CPUIDEntry {
	level := func(index, shift, count, typ uint32) CPUIDEntry {
		e := CPUIDEntry{Index: index, Flags: CPUIDFlagSignificantIndex, EDX: n.apicID}
		setField(&e.EAX, 0, 4, shift)
		setField(&e.EBX, 0, 15, count)
		setField(&e.ECX, 0, 7, index)
		setField(&e.ECX, 8, 15, typ)
		return e
	}
	return []CPUIDEntry{
		level(0, uint32(n.l.smtBits), uint32(n.l.threads), levelSMT),
		level(1, uint32(n.l.smtBits+n.l.coreBits), uint32(n.l.threadsPerPackage()), levelCore),
		level(2, 0, 0, levelInvalid),
	}
}

// extFeatures1 hides SVM (no nested virtualization) in leaf 0x80000001.
func (n *normalizer) extFeatures1() {
	if e := n.t.find(leafExtFeatures1, 0); e != nil {
		e.ECX &^= bitSVM
	}
}

// powerMgmt hides the invariant TSC (leaf 0x80000007 EDX bit 8), as QEMU
// does by default: the TSC rate is not guaranteed across a migration, and
// with it Linux ranks the raw TSC above kvm-clock and drops kvm-clock.
func (n *normalizer) powerMgmt() {
	if e := n.t.find(leafPowerMgmt, 0); e != nil {
		e.EDX &^= bitInvariantTSC
	}
}

// addrSizes fills the AMD core count of leaf 0x80000008: ECX[7:0] is the
// number of threads in the package minus one, ECX[15:12] the APIC ID bits
// that number them. XSAVEERPTR (EBX bit 2) stays as KVM reports it.
func (n *normalizer) addrSizes() {
	e := n.t.find(leafAddrSizes, 0)
	if e == nil || n.vendor != vendorAMD {
		return
	}
	setField(&e.ECX, 0, 7, uint32(n.l.threadsPerPackage()-1))
	setField(&e.ECX, 12, 15, uint32(n.l.smtBits+n.l.coreBits))
}

// amdExtAPICID fills leaf 0x8000001E: the extended APIC ID, core
// (compute unit) ID, threads per core and node ID.
func (n *normalizer) amdExtAPICID() {
	e := n.t.find(leafAMDExtAPICID, 0)
	if e == nil {
		return
	}
	core := (n.cpu / n.l.threads) % n.l.cores
	socket := n.cpu / n.l.threadsPerPackage()
	e.EAX = n.apicID
	e.EBX = 0
	setField(&e.EBX, 0, 7, uint32(core)&0xff)
	setField(&e.EBX, 8, 15, uint32(n.l.threads-1))
	e.ECX = 0
	setField(&e.ECX, 0, 7, uint32(socket)&0xff) // one node per socket
	e.EDX = 0
}

// kvmLeaves replaces the hypervisor range with the KVM signature and
// feature leaves. The features are DefaultKVMFeatures, intersected with
// KVM's own 0x40000001 entry when the supported table has one.
func (n *normalizer) kvmLeaves() {
	features := DefaultKVMFeatures
	if e := n.t.find(LeafKVMFeatures, 0); e != nil {
		features &= e.EAX
	}
	n.t.removeIf(func(e *CPUIDEntry) bool {
		return e.Function >= leafHypervisorBase && e.Function <= leafHypervisorEnd
	})
	sig := []byte(kvmSignature)
	*n.t = append(*n.t,
		CPUIDEntry{
			Function: LeafKVMSignature,
			EAX:      LeafKVMFeatures,
			EBX:      binary.LittleEndian.Uint32(sig[0:]),
			ECX:      binary.LittleEndian.Uint32(sig[4:]),
			EDX:      binary.LittleEndian.Uint32(sig[8:]),
		},
		CPUIDEntry{Function: LeafKVMFeatures, EAX: features},
	)
}
