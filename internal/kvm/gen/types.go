//go:build ignore

// Input to `go tool cgo -godefs`; the output is ../ztypes_amd64.go.
// Regenerate with: go generate ./internal/kvm

package kvm

/*
#include <stddef.h>
#include <linux/kvm.h>
#include <linux/kvm_para.h>

// Offsets into struct kvm_run's exit union, which -godefs cannot express.
enum {
	run_off_immediate_exit = offsetof(struct kvm_run, immediate_exit),
	run_off_exit_reason = offsetof(struct kvm_run, exit_reason),
	run_off_io_direction = offsetof(struct kvm_run, io.direction),
	run_off_io_size = offsetof(struct kvm_run, io.size),
	run_off_io_port = offsetof(struct kvm_run, io.port),
	run_off_io_count = offsetof(struct kvm_run, io.count),
	run_off_io_data_offset = offsetof(struct kvm_run, io.data_offset),
	run_off_mmio_phys_addr = offsetof(struct kvm_run, mmio.phys_addr),
	run_off_mmio_data = offsetof(struct kvm_run, mmio.data),
	run_off_mmio_len = offsetof(struct kvm_run, mmio.len),
	run_off_mmio_is_write = offsetof(struct kvm_run, mmio.is_write),
	run_off_internal_suberror = offsetof(struct kvm_run, internal.suberror),
	run_off_internal_ndata = offsetof(struct kvm_run, internal.ndata),
	run_off_internal_data = offsetof(struct kvm_run, internal.data),
	run_off_emul_flags = offsetof(struct kvm_run, emulation_failure.flags),
	run_off_emul_insn_size = offsetof(struct kvm_run, emulation_failure.insn_size),
	run_off_emul_insn_bytes = offsetof(struct kvm_run, emulation_failure.insn_bytes),
	run_off_system_event_type = offsetof(struct kvm_run, system_event.type),
	run_off_system_event_ndata = offsetof(struct kvm_run, system_event.ndata),
	run_off_system_event_data = offsetof(struct kvm_run, system_event.data),
	run_off_fail_entry_reason = offsetof(struct kvm_run, fail_entry.hardware_entry_failure_reason),
	run_off_fail_entry_cpu = offsetof(struct kvm_run, fail_entry.cpu),
	run_off_msr_error = offsetof(struct kvm_run, msr.error),
	run_off_msr_reason = offsetof(struct kvm_run, msr.reason),
	run_off_msr_index = offsetof(struct kvm_run, msr.index),
	run_off_msr_data = offsetof(struct kvm_run, msr.data),
	run_size = sizeof(struct kvm_run),
	vcpu_events_size = sizeof(struct kvm_vcpu_events),
	vcpu_events_off_exception = offsetof(struct kvm_vcpu_events, exception),
	vcpu_events_off_interrupt = offsetof(struct kvm_vcpu_events, interrupt),
	vcpu_events_off_nmi = offsetof(struct kvm_vcpu_events, nmi),
	vcpu_events_off_sipi_vector = offsetof(struct kvm_vcpu_events, sipi_vector),
	vcpu_events_off_flags = offsetof(struct kvm_vcpu_events, flags),
	vcpu_events_off_smi = offsetof(struct kvm_vcpu_events, smi),
	vcpu_events_off_triple_fault = offsetof(struct kvm_vcpu_events, triple_fault),
	vcpu_events_off_exception_has_payload = offsetof(struct kvm_vcpu_events, exception_has_payload),
	vcpu_events_off_exception_payload = offsetof(struct kvm_vcpu_events, exception_payload),
};
*/
import "C"

const (
	APIVersion = C.KVM_API_VERSION

	// /dev/kvm ioctls
	ioctlGetAPIVersion     = C.KVM_GET_API_VERSION
	ioctlCreateVM          = C.KVM_CREATE_VM
	ioctlGetMSRIndexList   = C.KVM_GET_MSR_INDEX_LIST
	ioctlGetMSRFeatureList = C.KVM_GET_MSR_FEATURE_INDEX_LIST
	ioctlCheckExtension    = C.KVM_CHECK_EXTENSION
	ioctlGetVCPUMmapSize   = C.KVM_GET_VCPU_MMAP_SIZE
	ioctlGetSupportedCPUID = C.KVM_GET_SUPPORTED_CPUID
	ioctlGetEmulatedCPUID  = C.KVM_GET_EMULATED_CPUID

	// VM ioctls
	ioctlCreateVCPU          = C.KVM_CREATE_VCPU
	ioctlGetDirtyLog         = C.KVM_GET_DIRTY_LOG
	ioctlClearDirtyLog       = C.KVM_CLEAR_DIRTY_LOG
	ioctlSetUserMemoryRegion = C.KVM_SET_USER_MEMORY_REGION
	ioctlSetTSSAddr          = C.KVM_SET_TSS_ADDR
	ioctlSetIdentityMapAddr  = C.KVM_SET_IDENTITY_MAP_ADDR
	ioctlCreateIRQChip       = C.KVM_CREATE_IRQCHIP
	ioctlGetIRQChip          = C.KVM_GET_IRQCHIP
	ioctlSetIRQChip          = C.KVM_SET_IRQCHIP
	ioctlIRQLine             = C.KVM_IRQ_LINE
	ioctlIRQLineStatus       = C.KVM_IRQ_LINE_STATUS
	ioctlCreatePIT2          = C.KVM_CREATE_PIT2
	ioctlGetPIT2             = C.KVM_GET_PIT2
	ioctlSetPIT2             = C.KVM_SET_PIT2
	ioctlIRQFD               = C.KVM_IRQFD
	ioctlIOEventFD           = C.KVM_IOEVENTFD
	ioctlSetGSIRouting       = C.KVM_SET_GSI_ROUTING
	ioctlGetClock            = C.KVM_GET_CLOCK
	ioctlSetClock            = C.KVM_SET_CLOCK
	ioctlEnableCap           = C.KVM_ENABLE_CAP
	ioctlGetStatsFD          = C.KVM_GET_STATS_FD
	ioctlSignalMSI           = C.KVM_SIGNAL_MSI

	// vCPU ioctls
	ioctlRun           = C.KVM_RUN
	ioctlGetRegs       = C.KVM_GET_REGS
	ioctlSetRegs       = C.KVM_SET_REGS
	ioctlGetSregs      = C.KVM_GET_SREGS
	ioctlSetSregs      = C.KVM_SET_SREGS
	ioctlGetFPU        = C.KVM_GET_FPU
	ioctlSetFPU        = C.KVM_SET_FPU
	ioctlGetXSave      = C.KVM_GET_XSAVE
	ioctlSetXSave      = C.KVM_SET_XSAVE
	ioctlGetXCRs       = C.KVM_GET_XCRS
	ioctlSetXCRs       = C.KVM_SET_XCRS
	ioctlGetMSRs       = C.KVM_GET_MSRS
	ioctlSetMSRs       = C.KVM_SET_MSRS
	ioctlGetLAPIC      = C.KVM_GET_LAPIC
	ioctlSetLAPIC      = C.KVM_SET_LAPIC
	ioctlGetVCPUEvents = C.KVM_GET_VCPU_EVENTS
	ioctlSetVCPUEvents = C.KVM_SET_VCPU_EVENTS
	ioctlGetMPState    = C.KVM_GET_MP_STATE
	ioctlSetMPState    = C.KVM_SET_MP_STATE
	ioctlSetCPUID2     = C.KVM_SET_CPUID2
	ioctlGetCPUID2     = C.KVM_GET_CPUID2
	ioctlSetSignalMask = C.KVM_SET_SIGNAL_MASK
	ioctlGetDebugRegs  = C.KVM_GET_DEBUGREGS
	ioctlSetDebugRegs  = C.KVM_SET_DEBUGREGS
	ioctlKVMClockCtrl  = C.KVM_KVMCLOCK_CTRL
	ioctlSetTSCKHz     = C.KVM_SET_TSC_KHZ
	ioctlGetTSCKHz     = C.KVM_GET_TSC_KHZ
	ioctlTranslate     = C.KVM_TRANSLATE

	// Capabilities
	CapIRQChip                = C.KVM_CAP_IRQCHIP
	CapHLT                    = C.KVM_CAP_HLT
	CapUserMemory             = C.KVM_CAP_USER_MEMORY
	CapSetTSSAddr             = C.KVM_CAP_SET_TSS_ADDR
	CapVAPIC                  = C.KVM_CAP_VAPIC
	CapExtCPUID               = C.KVM_CAP_EXT_CPUID
	CapNRVCPUs                = C.KVM_CAP_NR_VCPUS
	CapMaxVCPUs               = C.KVM_CAP_MAX_VCPUS
	CapNRMemSlots             = C.KVM_CAP_NR_MEMSLOTS
	CapPIT2                   = C.KVM_CAP_PIT2
	CapPITState2              = C.KVM_CAP_PIT_STATE2
	CapIRQFD                  = C.KVM_CAP_IRQFD
	CapIOEventFD              = C.KVM_CAP_IOEVENTFD
	CapIRQRouting             = C.KVM_CAP_IRQ_ROUTING
	CapSetIdentityMapAddr     = C.KVM_CAP_SET_IDENTITY_MAP_ADDR
	CapAdjustClock            = C.KVM_CAP_ADJUST_CLOCK
	CapVCPUEvents             = C.KVM_CAP_VCPU_EVENTS
	CapDebugRegs              = C.KVM_CAP_DEBUGREGS
	CapXSave                  = C.KVM_CAP_XSAVE
	CapXCRs                   = C.KVM_CAP_XCRS
	CapTSCControl             = C.KVM_CAP_TSC_CONTROL
	CapTSCDeadlineTimer       = C.KVM_CAP_TSC_DEADLINE_TIMER
	CapKVMClockCtrl           = C.KVM_CAP_KVMCLOCK_CTRL
	CapSignalMSI              = C.KVM_CAP_SIGNAL_MSI
	CapReadonlyMem            = C.KVM_CAP_READONLY_MEM
	CapImmediateExit          = C.KVM_CAP_IMMEDIATE_EXIT
	CapSyncRegs               = C.KVM_CAP_SYNC_REGS
	CapX2APICAPI              = C.KVM_CAP_X2APIC_API
	CapSplitIRQChip           = C.KVM_CAP_SPLIT_IRQCHIP
	CapX86DisableExits        = C.KVM_CAP_X86_DISABLE_EXITS
	CapX86UserSpaceMSR        = C.KVM_CAP_X86_USER_SPACE_MSR
	CapManualDirtyLogProtect2 = C.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2
	CapDirtyLogRing           = C.KVM_CAP_DIRTY_LOG_RING
	CapCoalescedMMIO          = C.KVM_CAP_COALESCED_MMIO
	CapCoalescedPIO           = C.KVM_CAP_COALESCED_PIO
	CapBinaryStatsFD          = C.KVM_CAP_BINARY_STATS_FD
	CapXSave2                 = C.KVM_CAP_XSAVE2
	CapGetMSRFeatures         = C.KVM_CAP_GET_MSR_FEATURES
	CapSystemEventData        = C.KVM_CAP_SYSTEM_EVENT_DATA

	// Exit reasons
	ExitUnknown       = C.KVM_EXIT_UNKNOWN
	ExitException     = C.KVM_EXIT_EXCEPTION
	ExitIO            = C.KVM_EXIT_IO
	ExitHypercall     = C.KVM_EXIT_HYPERCALL
	ExitDebug         = C.KVM_EXIT_DEBUG
	ExitHLT           = C.KVM_EXIT_HLT
	ExitMMIO          = C.KVM_EXIT_MMIO
	ExitIRQWindowOpen = C.KVM_EXIT_IRQ_WINDOW_OPEN
	ExitShutdown      = C.KVM_EXIT_SHUTDOWN
	ExitFailEntry     = C.KVM_EXIT_FAIL_ENTRY
	ExitIntr          = C.KVM_EXIT_INTR
	ExitSetTPR        = C.KVM_EXIT_SET_TPR
	ExitTPRAccess     = C.KVM_EXIT_TPR_ACCESS
	ExitNMI           = C.KVM_EXIT_NMI
	ExitInternalError = C.KVM_EXIT_INTERNAL_ERROR
	ExitSystemEvent   = C.KVM_EXIT_SYSTEM_EVENT
	ExitIOAPICEOI     = C.KVM_EXIT_IOAPIC_EOI
	ExitX86RDMSR      = C.KVM_EXIT_X86_RDMSR
	ExitX86WRMSR      = C.KVM_EXIT_X86_WRMSR

	ExitIOIn  = C.KVM_EXIT_IO_IN
	ExitIOOut = C.KVM_EXIT_IO_OUT

	InternalErrorEmulation                     = C.KVM_INTERNAL_ERROR_EMULATION
	InternalErrorSimulEx                       = C.KVM_INTERNAL_ERROR_SIMUL_EX
	InternalErrorDeliveryEv                    = C.KVM_INTERNAL_ERROR_DELIVERY_EV
	InternalErrorUnexpectedExitReason          = C.KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON
	InternalErrorEmulationFlagInstructionBytes = C.KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES

	runOffImmediateExit    = C.run_off_immediate_exit
	runOffExitReason       = C.run_off_exit_reason
	runOffIODirection      = C.run_off_io_direction
	runOffIOSize           = C.run_off_io_size
	runOffIOPort           = C.run_off_io_port
	runOffIOCount          = C.run_off_io_count
	runOffIODataOffset     = C.run_off_io_data_offset
	runOffMMIOPhysAddr     = C.run_off_mmio_phys_addr
	runOffMMIOData         = C.run_off_mmio_data
	runOffMMIOLen          = C.run_off_mmio_len
	runOffMMIOIsWrite      = C.run_off_mmio_is_write
	runOffInternalSuberror = C.run_off_internal_suberror
	runOffInternalNData    = C.run_off_internal_ndata
	runOffInternalData     = C.run_off_internal_data
	runOffEmulFlags        = C.run_off_emul_flags
	runOffEmulInsnSize     = C.run_off_emul_insn_size
	runOffEmulInsnBytes    = C.run_off_emul_insn_bytes
	runOffSystemEventType  = C.run_off_system_event_type
	runOffSystemEventNData = C.run_off_system_event_ndata
	runOffSystemEventData  = C.run_off_system_event_data
	runOffFailEntryReason  = C.run_off_fail_entry_reason
	runOffFailEntryCPU     = C.run_off_fail_entry_cpu
	runOffMSRError         = C.run_off_msr_error
	runOffMSRReason        = C.run_off_msr_reason
	runOffMSRIndex         = C.run_off_msr_index
	runOffMSRData          = C.run_off_msr_data
	runSize                = C.run_size

	vcpuEventsSize                   = C.vcpu_events_size
	vcpuEventsOffException           = C.vcpu_events_off_exception
	vcpuEventsOffInterrupt           = C.vcpu_events_off_interrupt
	vcpuEventsOffNMI                 = C.vcpu_events_off_nmi
	vcpuEventsOffSIPIVector          = C.vcpu_events_off_sipi_vector
	vcpuEventsOffFlags               = C.vcpu_events_off_flags
	vcpuEventsOffSMI                 = C.vcpu_events_off_smi
	vcpuEventsOffTripleFault         = C.vcpu_events_off_triple_fault
	vcpuEventsOffExceptionHasPayload = C.vcpu_events_off_exception_has_payload
	vcpuEventsOffExceptionPayload    = C.vcpu_events_off_exception_payload

	SystemEventShutdown = C.KVM_SYSTEM_EVENT_SHUTDOWN
	SystemEventReset    = C.KVM_SYSTEM_EVENT_RESET
	SystemEventCrash    = C.KVM_SYSTEM_EVENT_CRASH

	MemLogDirtyPages = C.KVM_MEM_LOG_DIRTY_PAGES
	MemReadonly      = C.KVM_MEM_READONLY

	MPStateRunnable      = C.KVM_MP_STATE_RUNNABLE
	MPStateUninitialized = C.KVM_MP_STATE_UNINITIALIZED
	MPStateInitReceived  = C.KVM_MP_STATE_INIT_RECEIVED
	MPStateHalted        = C.KVM_MP_STATE_HALTED
	MPStateSIPIReceived  = C.KVM_MP_STATE_SIPI_RECEIVED

	IRQChipPICMaster = C.KVM_IRQCHIP_PIC_MASTER
	IRQChipPICSlave  = C.KVM_IRQCHIP_PIC_SLAVE
	IRQChipIOAPIC    = C.KVM_IRQCHIP_IOAPIC

	IRQRoutingIRQChip = C.KVM_IRQ_ROUTING_IRQCHIP
	IRQRoutingMSI     = C.KVM_IRQ_ROUTING_MSI

	IRQFDFlagDeassign      = C.KVM_IRQFD_FLAG_DEASSIGN
	IRQFDFlagResample      = C.KVM_IRQFD_FLAG_RESAMPLE
	IOEventFDFlagDatamatch = 1 << C.kvm_ioeventfd_flag_nr_datamatch
	IOEventFDFlagPIO       = 1 << C.kvm_ioeventfd_flag_nr_pio
	IOEventFDFlagDeassign  = 1 << C.kvm_ioeventfd_flag_nr_deassign

	PITSpeakerDummy = C.KVM_PIT_SPEAKER_DUMMY

	CPUIDFlagSignificantIndex = C.KVM_CPUID_FLAG_SIGNIFCANT_INDEX

	VCPUEventValidNMIPending = C.KVM_VCPUEVENT_VALID_NMI_PENDING
	VCPUEventValidSIPIVector = C.KVM_VCPUEVENT_VALID_SIPI_VECTOR
	VCPUEventValidShadow     = C.KVM_VCPUEVENT_VALID_SHADOW
	VCPUEventValidSMM        = C.KVM_VCPUEVENT_VALID_SMM

	ClockTSCStable = C.KVM_CLOCK_TSC_STABLE

	X86DisableExitsHLT   = C.KVM_X86_DISABLE_EXITS_HLT
	X86DisableExitsPause = C.KVM_X86_DISABLE_EXITS_PAUSE

	StatsTypeMask = C.KVM_STATS_TYPE_MASK
	StatsUnitMask = C.KVM_STATS_UNIT_MASK
	StatsBaseMask = C.KVM_STATS_BASE_MASK

	SyncX86Regs   = C.KVM_SYNC_X86_REGS
	SyncX86Sregs  = C.KVM_SYNC_X86_SREGS
	SyncX86Events = C.KVM_SYNC_X86_EVENTS

	DirtyLogManualProtectEnable = C.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE
	DirtyLogInitiallySet        = C.KVM_DIRTY_LOG_INITIALLY_SET
)

type (
	UserspaceMemoryRegion C.struct_kvm_userspace_memory_region
	Regs                  C.struct_kvm_regs
	Segment               C.struct_kvm_segment
	DTable                C.struct_kvm_dtable
	Sregs                 C.struct_kvm_sregs
	FPU                   C.struct_kvm_fpu
	XSave                 C.struct_kvm_xsave
	XCR                   C.struct_kvm_xcr
	XCRs                  C.struct_kvm_xcrs
	MSREntry              C.struct_kvm_msr_entry
	msrsHeader            C.struct_kvm_msrs
	msrListHeader         C.struct_kvm_msr_list
	LAPICState            C.struct_kvm_lapic_state
	MPState               C.struct_kvm_mp_state
	CPUIDEntry2           C.struct_kvm_cpuid_entry2
	cpuid2Header          C.struct_kvm_cpuid2
	PITConfig             C.struct_kvm_pit_config
	PITChannelState       C.struct_kvm_pit_channel_state
	PITState2             C.struct_kvm_pit_state2
	IRQChip               C.struct_kvm_irqchip
	PICState              C.struct_kvm_pic_state
	IOAPICState           C.struct_kvm_ioapic_state
	IRQLevel              C.struct_kvm_irq_level
	IRQFD                 C.struct_kvm_irqfd
	IOEventFD             C.struct_kvm_ioeventfd
	IRQRoutingEntry       C.struct_kvm_irq_routing_entry
	IRQRoutingIRQChipData C.struct_kvm_irq_routing_irqchip
	IRQRoutingMSIData     C.struct_kvm_irq_routing_msi
	irqRoutingHeader      C.struct_kvm_irq_routing
	signalMaskHeader      C.struct_kvm_signal_mask
	ClockData             C.struct_kvm_clock_data
	DebugRegs             C.struct_kvm_debugregs
	EnableCap             C.struct_kvm_enable_cap
	MSI                   C.struct_kvm_msi
	Translation           C.struct_kvm_translation
	StatsHeader           C.struct_kvm_stats_header
	statsDescHeader       C.struct_kvm_stats_desc
)
