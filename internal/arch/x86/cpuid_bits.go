package x86

// CPUID leaves this package reads or rewrites.
const (
	leafVendor         = 0x0
	leafFeatures       = 0x1
	leafCacheParams    = 0x4 // Intel deterministic cache parameters
	leafPower          = 0x6 // thermal and power management
	leafExtFeatures    = 0x7
	leafPMU            = 0xa
	leafTopology       = 0xb // x2APIC topology
	leafXSAVE          = 0xd
	leafTopologyV2     = 0x1f
	leafExtMax         = 0x80000000
	leafExtFeatures1   = 0x80000001
	leafPowerMgmt      = 0x80000007 // advanced power management
	leafAddrSizes      = 0x80000008
	leafAMDCacheTopo   = 0x8000001d
	leafAMDExtAPICID   = 0x8000001e
	leafHypervisorBase = 0x40000000
	leafHypervisorEnd  = 0x400000ff
)

// bitInvariantTSC is leaf 0x80000007 EDX bit 8.
const bitInvariantTSC = 1 << 8

// The KVM paravirtual leaves (Documentation/virt/kvm/x86/cpuid.rst).
const (
	// LeafKVMSignature returns the highest KVM leaf in EAX and the
	// signature "KVMKVMKVM\0\0\0" in EBX, ECX, EDX.
	LeafKVMSignature = 0x40000000
	// LeafKVMFeatures returns the KVMFeature* bits in EAX.
	LeafKVMFeatures = 0x40000001
)

// KVM paravirtual feature bits, CPUID 0x40000001 EAX.
const (
	KVMFeatureClocksource          uint32 = 1 << 0  // kvmclock at MSRs 0x11/0x12
	KVMFeatureNopIODelay           uint32 = 1 << 1  // no delay needed for port 0x80 writes
	KVMFeatureMMUOp                uint32 = 1 << 2  // deprecated
	KVMFeatureClocksource2         uint32 = 1 << 3  // kvmclock at MSRs 0x4b564d00/01
	KVMFeatureAsyncPF              uint32 = 1 << 4  // asynchronous page faults
	KVMFeatureStealTime            uint32 = 1 << 5  // steal time accounting
	KVMFeaturePVEOI                uint32 = 1 << 6  // paravirtual end of interrupt
	KVMFeaturePVUnhalt             uint32 = 1 << 7  // paravirtual spinlock kick
	KVMFeaturePVTLBFlush           uint32 = 1 << 9  // paravirtual TLB flush
	KVMFeatureAsyncPFVMExit        uint32 = 1 << 10 // async page faults delivered as #VE/vmexit
	KVMFeaturePVSendIPI            uint32 = 1 << 11 // paravirtual IPI hypercall
	KVMFeaturePollControl          uint32 = 1 << 12 // host-side halt polling control
	KVMFeaturePVSchedYield         uint32 = 1 << 13 // yield to a preempted vCPU
	KVMFeatureAsyncPFInt           uint32 = 1 << 14 // async page fault "page ready" as interrupt
	KVMFeatureMSIExtDestID         uint32 = 1 << 15 // 15-bit MSI destination IDs
	KVMFeatureHCMapGPARange        uint32 = 1 << 16 // KVM_HC_MAP_GPA_RANGE hypercall
	KVMFeatureMigrationControl     uint32 = 1 << 17 // MSR_KVM_MIGRATION_CONTROL
	KVMFeatureClocksourceStableBit uint32 = 1 << 24 // kvmclock is stable across vCPUs
)

// DefaultKVMFeatures is the paravirtual feature set offered to guests,
// intersected with what KVM reports: kvmclock (both MSR ranges, with the
// stable bit), no I/O delay and paravirtual EOI. Features that need VMM
// support Vireo does not have yet (async page faults, steal time,
// paravirtual unhalt) stay off.
const DefaultKVMFeatures = KVMFeatureClocksource | KVMFeatureNopIODelay |
	KVMFeatureClocksource2 | KVMFeaturePVEOI | KVMFeatureClocksourceStableBit

// kvmSignature is the hypervisor vendor string of LeafKVMSignature.
const kvmSignature = "KVMKVMKVM\x00\x00\x00"

// CPU feature bits, named after Linux's X86_FEATURE_* where one exists.
const (
	// Leaf 1 ECX.
	bitSSE3        = 1 << 0
	bitPCLMULQDQ   = 1 << 1
	bitVMX         = 1 << 5
	bitSSSE3       = 1 << 9
	bitFMA         = 1 << 12
	bitCX16        = 1 << 13
	bitPDCM        = 1 << 15
	bitSSE41       = 1 << 19
	bitSSE42       = 1 << 20
	bitX2APIC      = 1 << 21
	bitMOVBE       = 1 << 22
	bitPOPCNT      = 1 << 23
	bitTSCDeadline = 1 << 24
	bitXSAVE       = 1 << 26
	bitOSXSAVE     = 1 << 27
	bitAVX         = 1 << 28
	bitF16C        = 1 << 29
	bitHypervisor  = 1 << 31

	// Leaf 1 EDX.
	bitCLFSH = 1 << 19
	bitHTT   = 1 << 28

	// Leaf 6 EAX.
	bitARAT = 1 << 2

	// Leaf 7.0 EBX.
	bitBMI1          = 1 << 3
	bitAVX2          = 1 << 5
	bitFDPExcptnOnly = 1 << 6
	bitBMI2          = 1 << 8
	bitZeroFCSFDS    = 1 << 13
	bitAVX512F       = 1 << 16
	bitAVX512DQ      = 1 << 17
	bitAVX512IFMA    = 1 << 21
	bitAVX512PF      = 1 << 26
	bitAVX512ER      = 1 << 27
	bitAVX512CD      = 1 << 28
	bitAVX512BW      = 1 << 30
	bitAVX512VL      = 1 << 31

	// Leaf 7.0 ECX.
	bitAVX512VBMI      = 1 << 1
	bitWAITPKG         = 1 << 5
	bitAVX512VBMI2     = 1 << 6
	bitVAES            = 1 << 9
	bitVPCLMULQDQ      = 1 << 10
	bitAVX512VNNI      = 1 << 11
	bitAVX512BITALG    = 1 << 12
	bitAVX512VPOPCNTDQ = 1 << 14

	// Leaf 7.0 EDX.
	bitAVX5124VNNIW       = 1 << 2
	bitAVX5124FMAPS       = 1 << 3
	bitAVX512VP2Intersect = 1 << 8
	bitMDClear            = 1 << 10
	bitAMXBF16            = 1 << 22
	bitAVX512FP16         = 1 << 23
	bitAMXTile            = 1 << 24
	bitAMXInt8            = 1 << 25
	bitSpecCtrl           = 1 << 26
	bitSTIBP              = 1 << 27
	bitFlushL1D           = 1 << 28
	bitArchCapabilities   = 1 << 29
	bitCoreCapabilities   = 1 << 30
	bitSSBD               = 1 << 31

	// Leaf 7.1 EAX.
	bitAVXVNNI    = 1 << 4
	bitAVX512BF16 = 1 << 5

	// Leaf 0xD.1 EAX.
	bitXSAVEOPT = 1 << 0
	bitXSAVEC   = 1 << 1
	bitXGETBV1  = 1 << 2

	// Leaf 0x80000001 ECX.
	bitLAHFLM    = 1 << 0
	bitCmpLegacy = 1 << 1
	bitSVM       = 1 << 2
	bitABM       = 1 << 5 // LZCNT
	bitTopoExt   = 1 << 22

	// Leaf 0x80000001 EDX.
	bitSYSCALL = 1 << 11
	bitNX      = 1 << 20
	bitGBPages = 1 << 26
	bitRDTSCP  = 1 << 27
	bitLM      = 1 << 29

	// Leaf 0x80000008 EBX.
	bitXSAVEERPTR = 1 << 2
)

// XSAVE state components (bit numbers in XCR0 and leaf 0xD).
const (
	xfeatureX87       = 1 << 0
	xfeatureSSE       = 1 << 1
	xfeatureYMM       = 1 << 2
	xfeatureOpmask    = 1 << 5
	xfeatureZMMHi256  = 1 << 6
	xfeatureHi16ZMM   = 1 << 7
	xfeatureAVX512    = xfeatureOpmask | xfeatureZMMHi256 | xfeatureHi16ZMM
	xfeatureTileCfg   = 1 << 17
	xfeatureTileData  = 1 << 18
	xfeatureAMX       = xfeatureTileCfg | xfeatureTileData
	xsaveLegacyHeader = 512 + 64 // legacy FXSAVE area plus the XSAVE header
)

// Leaf 1 EDX bits every x86-64 CPU has, plus system features (APIC, MTRR,
// PAT...) that are not instruction-set extensions.
const leaf1EDXBase = 0x3ff | // FPU VME DE PSE TSC MSR PAE MCE CX8 APIC
	1<<11 | 0x3f<<12 | // SEP; MTRR PGE MCA CMOV PAT PSE36
	bitCLFSH | 1<<23 | 1<<24 | 1<<25 | 1<<26 | // CLFSH MMX FXSR SSE SSE2
	bitHTT
