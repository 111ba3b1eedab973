package kvm

// VCPUEvents is struct kvm_vcpu_events, kept as its raw ABI bytes: it is
// saved and restored whole, and its nested anonymous structs have no Go
// equivalent in the generated file.
type VCPUEvents [vcpuEventsSize]byte

// TripleFaultPending reports the triple_fault.pending flag.
func (e *VCPUEvents) TripleFaultPending() bool { return e[vcpuEventsOffTripleFault] != 0 }

// Flags returns the validity flags.
func (e *VCPUEvents) Flags() uint32 { return le.Uint32(e[vcpuEventsOffFlags:]) }

// NMIPending reports whether an NMI is pending.
func (e *VCPUEvents) NMIPending() bool { return e[vcpuEventsOffNMI+1] != 0 }

// dirtyLog is struct kvm_dirty_log with the bitmap pointer as an address.
type dirtyLog struct {
	Slot   uint32
	_      uint32
	Bitmap uint64
}
