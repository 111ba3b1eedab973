package kvm

import (
	"encoding/binary"
	"sync/atomic"
)

// Run is a view of a vCPU's kvm_run area. Accessors read the shared mapping
// directly and never allocate, so they are safe on the exit path.
type Run struct {
	b []byte
}

var le = binary.LittleEndian

// ExitReason is the reason of the last exit.
func (r *Run) ExitReason() uint32 { return le.Uint32(r.b[runOffExitReason:]) }

// ImmediateExit reports kvm_run.immediate_exit.
func (r *Run) ImmediateExit() bool { return atomic.LoadUint32(r.runWord())&immediateExitBit != 0 }

// IO describes a KVM_EXIT_IO: direction (ExitIOIn/ExitIOOut), port, access
// size, and the data buffer inside kvm_run (size*count bytes). ok is false
// when KVM reported a buffer outside the mapping.
func (r *Run) IO() (dir uint8, port uint16, size int, data []byte, ok bool) {
	dir = r.b[runOffIODirection]
	size = int(r.b[runOffIOSize])
	port = le.Uint16(r.b[runOffIOPort:])
	count := int(le.Uint32(r.b[runOffIOCount:]))
	off := le.Uint64(r.b[runOffIODataOffset:])
	n := size * count
	if off > uint64(len(r.b)) || n < 0 || uint64(n) > uint64(len(r.b))-off {
		return dir, port, size, nil, false
	}
	return dir, port, size, r.b[off : off+uint64(n)], true
}

// MMIO describes a KVM_EXIT_MMIO: address, the data bytes (len of them) and
// whether it is a write.
func (r *Run) MMIO() (addr uint64, data []byte, isWrite bool) {
	addr = le.Uint64(r.b[runOffMMIOPhysAddr:])
	n := le.Uint32(r.b[runOffMMIOLen:])
	if n > 8 {
		n = 8
	}
	return addr, r.b[runOffMMIOData : runOffMMIOData+int(n)], r.b[runOffMMIOIsWrite] != 0
}

// InternalError describes a KVM_EXIT_INTERNAL_ERROR.
type InternalError struct {
	Suberror uint32
	Data     []uint64
	// Insn holds the instruction bytes for emulation failures when KVM provides them.
	Insn []byte
}

// InternalError decodes a KVM_EXIT_INTERNAL_ERROR (allocates; error path only).
func (r *Run) InternalError() InternalError {
	e := InternalError{Suberror: le.Uint32(r.b[runOffInternalSuberror:])}
	nd := le.Uint32(r.b[runOffInternalNData:])
	if nd > 16 {
		nd = 16
	}
	for i := uint32(0); i < nd; i++ {
		e.Data = append(e.Data, le.Uint64(r.b[runOffInternalData+8*int(i):]))
	}
	if e.Suberror == InternalErrorEmulation && nd >= 2 {
		flags := le.Uint64(r.b[runOffEmulFlags:])
		if flags&InternalErrorEmulationFlagInstructionBytes != 0 {
			n := int(r.b[runOffEmulInsnSize])
			if n > 15 {
				n = 15
			}
			e.Insn = append([]byte(nil), r.b[runOffEmulInsnBytes:runOffEmulInsnBytes+n]...)
		}
	}
	return e
}

// SystemEvent returns the type of a KVM_EXIT_SYSTEM_EVENT.
func (r *Run) SystemEvent() uint32 { return le.Uint32(r.b[runOffSystemEventType:]) }

// FailEntry returns the hardware entry failure reason and CPU.
func (r *Run) FailEntry() (reason uint64, cpu uint32) {
	return le.Uint64(r.b[runOffFailEntryReason:]), le.Uint32(r.b[runOffFailEntryCPU:])
}

// immediateExitBit is immediate_exit (byte 1) within the first word of kvm_run.
const immediateExitBit = 1 << (8 * runOffImmediateExit)

// Kick sets immediate_exit atomically; safe from any goroutine.
func (r *Run) Kick() { atomic.OrUint32(r.runWord(), immediateExitBit) }

// ClearKick clears immediate_exit atomically.
func (r *Run) ClearKick() { atomic.AndUint32(r.runWord(), ^uint32(immediateExitBit)) }
