package mmio

import "sync/atomic"

// isrReg is the InterruptStatus register. Device workers raise bits, the
// driver reads them and acknowledges them with a write to InterruptACK.
//
// The acknowledgement may reach the device late: KVM buffers it as a
// coalesced write, replayed only at the vCPU's next exit to Vireo. A
// late acknowledgement must not clear an event raised after the driver
// read the register, or that event would be lost. So the register also
// remembers which bits were raised since the last read, and an
// acknowledgement clears only bits that were not: exactly what the
// driver would see had each event been raised just after its
// acknowledgement. Both halves live in one word, changed atomically:
// the status in the low 32 bits, the raised-since-read bits above.
type isrReg struct{ w atomic.Uint64 }

// raise sets bits and marks them raised since the last read.
func (r *isrReg) raise(bits uint32) { r.w.Or(uint64(bits) | uint64(bits)<<32) }

// load returns the status without touching the raised bits (for state
// saves and inspection).
func (r *isrReg) load() uint32 { return uint32(r.w.Load()) }

// read is the driver's read: the status, forgetting what was raised
// before it.
func (r *isrReg) read() uint32 { return uint32(r.w.And(0xffffffff)) }

// ack clears the acknowledged bits that were not raised again since the
// driver's last read.
func (r *isrReg) ack(bits uint32) {
	for {
		old := r.w.Load()
		clear := uint64(bits) &^ (old >> 32)
		if r.w.CompareAndSwap(old, old&^clear) {
			return
		}
	}
}

// store sets the status (reset, restore), with nothing raised since a read.
func (r *isrReg) store(v uint32) { r.w.Store(uint64(v)) }
