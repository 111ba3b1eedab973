package vmm

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/vireo-vmm/vireo/internal/hostmem"
)

// MemoryReport is how the host backs the guest's memory at one moment.
// Sizes are in bytes.
type MemoryReport struct {
	// GuestBytes is guest RAM.
	GuestBytes uint64
	// HugePages ("off", "thp" or "hugetlbfs"), Merge and Shared are how
	// guest RAM was mapped.
	HugePages     string
	Merge, Shared bool
	// Resident is guest RAM present in host memory (mincore).
	Resident uint64
	// Mapping sums /proc/self/smaps over the guest RAM mappings: resident
	// memory, transparent huge pages, hugetlbfs pages, pages merged by
	// KSM (where smaps reports it), swap.
	Mapping hostmem.Usage
	// KSM are the process's KSM counters (zero where the kernel has none).
	KSM hostmem.ProcessKSM
	// ProcessRSS is the whole vireo process's resident memory.
	ProcessRSS uint64
	// Balloon describes the balloon device, nil without one.
	Balloon *BalloonInfo
}

// MemoryReport describes how the host backs the running guest's memory.
func (c *Controller) MemoryReport() (MemoryReport, error) {
	if c.Machine() == nil || c.State() == StateStopped {
		return MemoryReport{}, fmt.Errorf("cannot report memory: VM is %s: %w", c.State(), ErrState)
	}
	var r MemoryReport
	err := c.Do(func(m *Machine) error {
		var err error
		r, err = c.memoryReport(m)
		return err
	})
	return r, err
}

// memoryReport runs on the controller goroutine, which owns m.mem.
func (c *Controller) memoryReport(m *Machine) (MemoryReport, error) {
	b := m.mem.Backing()
	r := MemoryReport{GuestBytes: m.mem.Size(), HugePages: b.HugePages, Merge: b.Merge, Shared: b.Shared}
	if r.HugePages == "" {
		r.HugePages = "off"
	}
	var err error
	if r.Resident, err = m.mem.Resident(); err != nil {
		return r, err
	}
	regions := m.mem.Regions()
	ranges := make([]hostmem.Range, len(regions))
	for i := range regions {
		start := regions[i].HostAddr()
		ranges[i] = hostmem.Range{Start: start, End: start + regions[i].Size}
	}
	usage, err := hostmem.ProcessSmaps(0, ranges)
	if err != nil {
		return r, err
	}
	for _, u := range usage {
		r.Mapping = addUsage(r.Mapping, u)
	}
	r.KSM, _ = hostmem.ReadProcessKSM(0) // absent without KSM: zeros
	r.ProcessRSS = processRSS()
	if dev := m.balloon(); dev != nil {
		info := c.balloonInfo(dev)
		r.Balloon = &info
	}
	return r, nil
}

// addUsage sums two regions' usage; flags are those both have.
func addUsage(a, b hostmem.Usage) hostmem.Usage {
	if a.Mappings == 0 {
		return b
	}
	flags := []string{}
	for _, f := range strings.Fields(a.Flags) {
		if strings.Contains(" "+b.Flags+" ", " "+f+" ") {
			flags = append(flags, f)
		}
	}
	return hostmem.Usage{
		Mappings: a.Mappings + b.Mappings, Size: a.Size + b.Size, Rss: a.Rss + b.Rss,
		Anonymous: a.Anonymous + b.Anonymous, KSM: a.KSM + b.KSM, AnonHugePages: a.AnonHugePages + b.AnonHugePages,
		ShmemPmdMapped: a.ShmemPmdMapped + b.ShmemPmdMapped, SharedHugetlb: a.SharedHugetlb + b.SharedHugetlb,
		PrivateHugetlb: a.PrivateHugetlb + b.PrivateHugetlb, Swap: a.Swap + b.Swap,
		KernelPageSize: max(a.KernelPageSize, b.KernelPageSize), Flags: strings.Join(flags, " "),
	}
}

// processRSS reads this process's resident set from /proc/self/statm (0
// if it cannot).
func processRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return n * uint64(os.Getpagesize())
}
