package x86

// MSREntry is one model-specific register value (the fields of KVM's
// kvm_msr_entry that matter).
type MSREntry struct {
	Index uint32
	Data  uint64
}

// Architectural MSR indices.
const (
	MSRTSC          = 0x10
	MSRAPICBase     = 0x1b
	MSRTSCAdjust    = 0x3b
	MSRSpecCtrl     = 0x48
	MSRArchCaps     = 0x10a // IA32_ARCH_CAPABILITIES
	MSRSysenterCS   = 0x174
	MSRSysenterESP  = 0x175
	MSRSysenterEIP  = 0x176
	MSRMiscEnable   = 0x1a0
	MSRPAT          = 0x277
	MSRMTRRDefType  = 0x2ff
	MSRTSCDeadline  = 0x6e0
	MSREFER         = 0xc0000080
	MSRStar         = 0xc0000081
	MSRLStar        = 0xc0000082
	MSRCStar        = 0xc0000083
	MSRSyscallMask  = 0xc0000084
	MSRFSBase       = 0xc0000100
	MSRGSBase       = 0xc0000101
	MSRKernelGSBase = 0xc0000102
	MSRTSCAux       = 0xc0000103
)

// KVM paravirtual MSR indices (Documentation/virt/kvm/x86/msr.rst).
const (
	MSRKVMWallClockOld  = 0x11 // with KVMFeatureClocksource
	MSRKVMSystemTimeOld = 0x12
	MSRKVMWallClock     = 0x4b564d00 // with KVMFeatureClocksource2
	MSRKVMSystemTime    = 0x4b564d01
	MSRKVMAsyncPFEn     = 0x4b564d02
	MSRKVMStealTime     = 0x4b564d03
	MSRKVMPVEOIEn       = 0x4b564d04
	MSRKVMPollControl   = 0x4b564d05
	MSRKVMAsyncPFInt    = 0x4b564d06
	MSRKVMAsyncPFAck    = 0x4b564d07
)

// MSR bit fields.
const (
	MiscEnableFastString   = 1 << 0  // IA32_MISC_ENABLE: fast string operations
	MTRRDefTypeEnable      = 1 << 11 // MTRRdefType E: MTRRs enabled
	MTRRDefTypeFixedEnable = 1 << 10 // MTRRdefType FE: fixed-range MTRRs enabled
	MTRRTypeWriteBack      = 6       // memory type WB
	APICBaseBSP            = 1 << 8  // IA32_APIC_BASE: bootstrap processor
	APICBaseX2APICEnable   = 1 << 10
	APICBaseEnable         = 1 << 11
)

// BootMSRs returns the MSR values a vCPU starts the Linux boot protocols
// with: system-call MSRs and the TSC cleared, fast strings on, and MTRRs
// enabled with write-back as the default memory type.
func BootMSRs() []MSREntry {
	return []MSREntry{
		{MSRSysenterCS, 0},
		{MSRSysenterESP, 0},
		{MSRSysenterEIP, 0},
		{MSRStar, 0},
		{MSRCStar, 0},
		{MSRKernelGSBase, 0},
		{MSRSyscallMask, 0},
		{MSRLStar, 0},
		{MSRTSC, 0},
		{MSRMiscEnable, MiscEnableFastString},
		{MSRMTRRDefType, MTRRDefTypeEnable | MTRRTypeWriteBack},
	}
}

// snapshotMSRs are the MSRs a snapshot saves, in the order they must be
// restored: the TSC before anything timed against it, the
// async-page-fault interrupt vector before the MSR that enables it, the
// APIC base before the TSC deadline.
var snapshotMSRs = []uint32{
	MSRTSC,
	MSRTSCAdjust,
	MSRSysenterCS,
	MSRSysenterESP,
	MSRSysenterEIP,
	MSRStar,
	MSRLStar,
	MSRCStar,
	MSRSyscallMask,
	MSRKernelGSBase,
	MSRTSCAux,
	MSRMiscEnable,
	MSRPAT,
	MSRMTRRDefType,
	MSRSpecCtrl,
	MSRAPICBase,
	MSRKVMSystemTime,
	MSRKVMWallClock,
	MSRKVMSystemTimeOld,
	MSRKVMWallClockOld,
	MSRKVMStealTime,
	MSRKVMPVEOIEn,
	MSRKVMPollControl,
	MSRKVMAsyncPFInt,
	MSRKVMAsyncPFEn,
	MSRKVMAsyncPFAck,
	MSRTSCDeadline,
}

// unlistedMSRs are MSRs KVM saves and restores through KVM_GET/SET_MSRS
// but leaves out of KVM_GET_MSR_INDEX_LIST (the APIC base also travels in
// kvm_sregs; MTRRdefType is handled by KVM's MTRR emulation).
var unlistedMSRs = []uint32{MSRAPICBase, MSRMTRRDefType}

// SnapshotMSRIndices returns, in restore order, the MSRs a snapshot must
// save: those of a fixed list that supported (KVM_GET_MSR_INDEX_LIST)
// reports, plus the APIC base and MTRRdefType, which KVM handles without
// listing them. Segment bases and EFER travel in kvm_sregs instead.
func SnapshotMSRIndices(supported []uint32) []uint32 {
	have := make(map[uint32]bool, len(supported)+len(unlistedMSRs))
	for _, m := range supported {
		have[m] = true
	}
	for _, m := range unlistedMSRs {
		have[m] = true
	}
	out := make([]uint32, 0, len(snapshotMSRs))
	for _, m := range snapshotMSRs {
		if have[m] {
			out = append(out, m)
		}
	}
	return out
}
