package x86

import (
	"errors"
	"fmt"
	"math/bits"
)

// ErrInvalidTopology reports a vCPU count, layout or index that cannot be
// described to the guest.
var ErrInvalidTopology = errors.New("invalid vCPU topology")

// MaxCPUs is the largest number of vCPUs the tables in this package
// describe (KVM's usual KVM_MAX_VCPUS). The MP table has a lower limit,
// MaxMPTableCPUs.
const MaxCPUs = 1024

// Topology is the vCPU layout the guest sees. The zero values of
// ThreadsPerCore and Sockets mean 1: by default every vCPU is a core of a
// single socket with one thread, and vCPU i has APIC ID i.
type Topology struct {
	CPUs           int // total vCPUs
	ThreadsPerCore int // SMT threads per core; 0 means 1
	Sockets        int // packages; 0 means 1
}

// layout is a validated Topology with the APIC ID field widths.
type layout struct {
	cpus, threads, cores, sockets int
	smtBits, coreBits             uint // APIC ID bits for the thread and core fields
}

// Validate reports whether the topology can be described to the guest.
func (t Topology) Validate() error {
	_, err := t.layout()
	return err
}

func (t Topology) layout() (layout, error) {
	l := layout{cpus: t.CPUs, threads: t.ThreadsPerCore, sockets: t.Sockets}
	if l.threads == 0 {
		l.threads = 1
	}
	if l.sockets == 0 {
		l.sockets = 1
	}
	if l.cpus < 1 || l.cpus > MaxCPUs {
		return l, fmt.Errorf("x86: %d vCPUs, want 1 to %d: %w", l.cpus, MaxCPUs, ErrInvalidTopology)
	}
	if l.threads < 0 || l.sockets < 0 {
		return l, fmt.Errorf("x86: negative threads per core (%d) or sockets (%d): %w", l.threads, l.sockets, ErrInvalidTopology)
	}
	unit := l.threads * l.sockets
	if unit > l.cpus || l.cpus%unit != 0 {
		return l, fmt.Errorf("x86: %d vCPUs cannot be split into %d sockets of %d-thread cores: %w",
			l.cpus, l.sockets, l.threads, ErrInvalidTopology)
	}
	l.cores = l.cpus / unit
	l.smtBits = idBits(l.threads)
	l.coreBits = idBits(l.cores)
	return l, nil
}

// idBits is the width of an APIC ID field that numbers n items.
func idBits(n int) uint {
	return uint(bits.Len(uint(n - 1)))
}

// APICID returns the (x2)APIC ID of vCPU cpuIndex: the thread, core and
// socket numbers packed into power-of-two fields, as hardware does. With
// the default layout it is cpuIndex itself. It returns 0 for an invalid
// topology or index.
func (t Topology) APICID(cpuIndex int) uint32 {
	l, err := t.layout()
	if err != nil || cpuIndex < 0 || cpuIndex >= l.cpus {
		return 0
	}
	return l.apicID(cpuIndex)
}

func (l layout) apicID(i int) uint32 {
	thread := i % l.threads
	core := (i / l.threads) % l.cores
	socket := i / (l.threads * l.cores)
	return uint32(socket)<<(l.smtBits+l.coreBits) | uint32(core)<<l.smtBits | uint32(thread)
}

// threadsPerPackage is the number of vCPUs in one socket.
func (l layout) threadsPerPackage() int { return l.threads * l.cores }

// packageIDs is the number of APIC IDs one socket spans (a power of two).
func (l layout) packageIDs() uint32 { return 1 << (l.smtBits + l.coreBits) }
