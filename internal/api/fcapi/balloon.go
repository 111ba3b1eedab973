package fcapi

import (
	"github.com/vireo-vmm/vireo/internal/devices/virtio/balloon"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// balloonStatistics is the body of GET /balloon/statistics: the balloon's
// sizes, then whichever statistics the guest reported (Firecracker leaves
// the others out).
type balloonStatistics struct {
	TargetPages        uint32  `json:"target_pages"`
	ActualPages        uint32  `json:"actual_pages"`
	TargetMib          uint32  `json:"target_mib"`
	ActualMib          uint32  `json:"actual_mib"`
	SwapIn             *uint64 `json:"swap_in,omitempty"`
	SwapOut            *uint64 `json:"swap_out,omitempty"`
	MajorFaults        *uint64 `json:"major_faults,omitempty"`
	MinorFaults        *uint64 `json:"minor_faults,omitempty"`
	FreeMemory         *uint64 `json:"free_memory,omitempty"`
	TotalMemory        *uint64 `json:"total_memory,omitempty"`
	AvailableMemory    *uint64 `json:"available_memory,omitempty"`
	DiskCaches         *uint64 `json:"disk_caches,omitempty"`
	HugetlbAllocations *uint64 `json:"hugetlb_allocations,omitempty"`
	HugetlbFailures    *uint64 `json:"hugetlb_failures,omitempty"`
	OOMKill            *uint64 `json:"oom_kill,omitempty"`
	AllocStall         *uint64 `json:"alloc_stall,omitempty"`
	AsyncScan          *uint64 `json:"async_scan,omitempty"`
	DirectScan         *uint64 `json:"direct_scan,omitempty"`
	AsyncReclaim       *uint64 `json:"async_reclaim,omitempty"`
	DirectReclaim      *uint64 `json:"direct_reclaim,omitempty"`
}

// pagesPerMib is the number of 4 KiB balloon pages in a MiB.
const pagesPerMib = 1 << (20 - 12)

func newBalloonStats(info vmm.BalloonInfo) balloonStatistics {
	b := balloonStatistics{
		TargetPages: info.TargetPages, ActualPages: info.ActualPages,
		TargetMib: info.TargetPages / pagesPerMib, ActualMib: info.ActualPages / pagesPerMib,
	}
	fields := [balloon.NumTags]**uint64{
		&b.SwapIn, &b.SwapOut, &b.MajorFaults, &b.MinorFaults,
		&b.FreeMemory, &b.TotalMemory, &b.AvailableMemory, &b.DiskCaches,
		&b.HugetlbAllocations, &b.HugetlbFailures, &b.OOMKill, &b.AllocStall,
		&b.AsyncScan, &b.DirectScan, &b.AsyncReclaim, &b.DirectReclaim,
	}
	info.Stats.Each(func(t balloon.Tag, v uint64) { *fields[t] = &v })
	return b
}

// balloonError reports a balloon request the VM refused.
func balloonError(err error) *fault {
	return badRequest("Balloon config error: %s", err)
}
