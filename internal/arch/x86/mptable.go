package x86

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// ErrTooManyCPUs reports a vCPU count the MP table cannot describe.
var ErrTooManyCPUs = errors.New("too many vCPUs for the MP table")

// MP table limits and placement (Intel MultiProcessor Specification 1.4).
const (
	// MaxMPTableCPUs is the most vCPUs the MP table describes: xAPIC IDs
	// are 8 bits, 0xff is the broadcast ID and the I/O APIC takes the
	// ID after the last vCPU.
	MaxMPTableCPUs = 254
	// MPTableStart is where the floating pointer goes: the last KiB of
	// base memory, one of the places Linux scans. The configuration
	// table follows it.
	MPTableStart = EBDAStart
	// MPTableEnd bounds the table. Past 37 vCPUs it runs beyond
	// 0xA0000 into the legacy area the memory map (and Linux, whatever
	// the map says) reserves up to 1 MiB; 254 vCPUs need 5.3 KiB.
	MPTableEnd = 0xa2000
)

// MP table constants.
const (
	mpFloatingSize = 16
	mpHeaderSize   = 44
	mpCPUSize      = 20
	mpEntrySize    = 8 // bus, I/O APIC, interrupt and local interrupt entries

	mpSpecRev = 4 // MP spec 1.4

	mpEntryProcessor = 0
	mpEntryBus       = 1
	mpEntryIOAPIC    = 2
	mpEntryIOIntr    = 3
	mpEntryLocalIntr = 4

	mpCPUEnabled = 1 << 0
	mpCPUBoot    = 1 << 1
	mpIOAPICOn   = 1 << 0

	mpIntINT    = 0
	mpIntNMI    = 1
	mpIntExtINT = 3

	mpIRQs         = 24   // I/O APIC pins, one interrupt entry each
	mpAPICVersion  = 0x14 // integrated local APIC
	mpIOAPICVer    = 0x11 // KVM's I/O APIC version register
	mpCPUSignature = 0x600
	mpCPUFeatures  = 1<<0 | 1<<9 // FPU, APIC (CPUID 1 EDX)
	mpAllLAPICs    = 0xff
)

var (
	mpFloatingSig = [4]byte{'_', 'M', 'P', '_'}
	mpTableSig    = [4]byte{'P', 'C', 'M', 'P'}
	mpOEMID       = [8]byte{'V', 'I', 'R', 'E', 'O', ' ', ' ', ' '}
	mpProductID   = [12]byte{'0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0'}
	mpBusISA      = [6]byte{'I', 'S', 'A', ' ', ' ', ' '}
)

// MPTableSize is the size in bytes of the MP table for cpus vCPUs, floating
// pointer included.
func MPTableSize(cpus int) int {
	return mpFloatingSize + mpHeaderSize + cpus*mpCPUSize +
		(1+1+mpIRQs+2)*mpEntrySize // bus, I/O APIC, interrupts, local interrupts
}

// WriteMPTable writes the MP table for cpus vCPUs with the default
// topology (APIC ID i for vCPU i) at MPTableStart.
func WriteMPTable(mem *guestmem.Memory, cpus int) error {
	return WriteMPTableTopology(mem, Topology{CPUs: cpus})
}

// WriteMPTableTopology writes the MP table at MPTableStart: one processor
// entry per vCPU with the APIC IDs BuildCPUID gives them, the ISA bus, one
// I/O APIC at IOAPICBase whose ID follows the last vCPU's, ISA IRQ n routed
// to I/O APIC pin n for all 24 pins (KVM's default GSI routing: the
// in-kernel PIT raises GSI 0 on pin 0), ExtINT on the boot vCPU's LINT0 and
// NMI on every LINT1.
func WriteMPTableTopology(mem *guestmem.Memory, topo Topology) error {
	l, err := topo.layout()
	if err != nil {
		return err
	}
	lastAPIC := l.apicID(l.cpus - 1)
	if l.cpus > MaxMPTableCPUs || lastAPIC >= MaxMPTableCPUs {
		return fmt.Errorf("x86: MP table for %d vCPUs (last APIC ID %d), at most %d APIC IDs: %w",
			l.cpus, lastAPIC, MaxMPTableCPUs, ErrTooManyCPUs)
	}
	size := MPTableSize(l.cpus)
	if MPTableStart+size > MPTableEnd {
		return fmt.Errorf("x86: MP table of %d bytes does not fit in %#x-%#x: %w",
			size, MPTableStart, MPTableEnd, ErrTooManyCPUs)
	}
	buf := buildMPTable(l, uint8(lastAPIC+1))
	if err := mem.WriteAt(buf, MPTableStart); err != nil {
		return fmt.Errorf("x86: writing %d-byte MP table at %#x: %w", len(buf), MPTableStart, err)
	}
	return nil
}

// buildMPTable lays out the floating pointer and configuration table.
func buildMPTable(l layout, ioapicID uint8) []byte {
	buf := make([]byte, MPTableSize(l.cpus))
	le := binary.LittleEndian

	// Floating pointer structure.
	fp := buf[:mpFloatingSize]
	copy(fp[0:], mpFloatingSig[:])
	le.PutUint32(fp[4:], MPTableStart+mpFloatingSize) // configuration table address
	fp[8] = 1                                         // length in 16-byte units
	fp[9] = mpSpecRev
	// fp[11] (feature byte 1) = 0: a configuration table is present.
	fp[10] = checksum(fp)

	cfg := buf[mpFloatingSize:]
	off := mpHeaderSize
	entries := 0
	add := func(b []byte) {
		copy(cfg[off:], b)
		off += len(b)
		entries++
	}

	for i := range l.cpus {
		var e [mpCPUSize]byte
		e[0] = mpEntryProcessor
		e[1] = uint8(l.apicID(i))
		e[2] = mpAPICVersion
		e[3] = mpCPUEnabled
		if i == 0 {
			e[3] |= mpCPUBoot
		}
		le.PutUint32(e[4:], mpCPUSignature)
		le.PutUint32(e[8:], mpCPUFeatures)
		add(e[:])
	}

	const busID = 0
	var bus [mpEntrySize]byte
	bus[0] = mpEntryBus
	bus[1] = busID
	copy(bus[2:], mpBusISA[:])
	add(bus[:])

	var ioapic [mpEntrySize]byte
	ioapic[0] = mpEntryIOAPIC
	ioapic[1] = ioapicID
	ioapic[2] = mpIOAPICVer
	ioapic[3] = mpIOAPICOn
	le.PutUint32(ioapic[4:], IOAPICBase)
	add(ioapic[:])

	// Flags 0: polarity and trigger mode conform to the bus.
	for irq := range uint8(mpIRQs) {
		add([]byte{mpEntryIOIntr, mpIntINT, 0, 0, busID, irq, ioapicID, irq})
	}
	add([]byte{mpEntryLocalIntr, mpIntExtINT, 0, 0, busID, 0, 0, 0})        // BSP LINT0
	add([]byte{mpEntryLocalIntr, mpIntNMI, 0, 0, busID, 0, mpAllLAPICs, 1}) // all LINT1

	// Configuration table header.
	copy(cfg[0:], mpTableSig[:])
	le.PutUint16(cfg[4:], uint16(off)) // base table length
	cfg[6] = mpSpecRev
	copy(cfg[8:], mpOEMID[:])
	copy(cfg[16:], mpProductID[:])
	le.PutUint16(cfg[34:], uint16(entries))
	le.PutUint32(cfg[36:], LAPICBase)
	cfg[7] = checksum(cfg[:off])
	return buf
}

// checksum returns the byte that makes the sum of b zero, assuming the
// checksum field in b is still zero.
func checksum(b []byte) uint8 {
	var sum uint8
	for _, c := range b {
		sum += c
	}
	return -sum
}
