package qmp

import (
	"fmt"
	"strings"
)

// MemoryReporter is implemented by a Machine that can say how the host
// backs guest memory. The server then offers x-query-vireo-memory and the
// human monitor's `info vireo-memory`.
type MemoryReporter interface {
	HostMemory() (HostMemory, error)
}

// HostMemory is the result of x-query-vireo-memory. Sizes are in bytes.
type HostMemory struct {
	// GuestMemory is guest RAM.
	GuestMemory uint64 `json:"guest-memory"`
	// HugePages ("off", "thp", "hugetlbfs"), Merge (KSM) and Shared
	// (memfd) are how guest RAM is mapped.
	HugePages string `json:"huge-pages"`
	Merge     bool   `json:"merge"`
	Shared    bool   `json:"shared"`
	// Resident is guest RAM present in host memory.
	Resident uint64 `json:"resident"`
	// AnonHugePages is guest RAM in transparent huge pages, Hugetlb in
	// hugetlbfs pages, KSMMerged in pages KSM has merged (where the host
	// kernel reports it per mapping), Swap swapped out.
	AnonHugePages uint64 `json:"anon-huge-pages"`
	Hugetlb       uint64 `json:"hugetlb"`
	KSMMerged     uint64 `json:"ksm-merged"`
	Swap          uint64 `json:"swap"`
	// KSMMergingPages and KSMProfit are the process's KSM counters: its
	// pages currently merged, and the bytes saved net of KSM's overhead.
	KSMMergingPages uint64 `json:"ksm-merging-pages"`
	KSMProfit       int64  `json:"ksm-profit"`
	// ProcessRSS is the whole VMM process's resident memory.
	ProcessRSS uint64 `json:"process-rss"`
	// Balloon is present with a balloon device.
	Balloon *BalloonMemory `json:"balloon,omitempty"`
}

// BalloonMemory is the balloon part of HostMemory.
type BalloonMemory struct {
	Target        uint64 `json:"target"`         // balloon size asked for
	Actual        uint64 `json:"actual"`         // balloon size the guest reports
	InflatedPages uint64 `json:"inflated-pages"` // 4 KiB pages ever put in the balloon
	DeflatedPages uint64 `json:"deflated-pages"` // and taken back
	Discarded     uint64 `json:"discarded"`      // bytes of inflated pages returned to the host
	Reported      uint64 `json:"reported"`       // bytes of free-page reports returned to the host
	InvalidPages  uint64 `json:"invalid-pages"`  // PFNs and ranges outside guest RAM, ignored
	// StatsInterval is the statistics polling interval in seconds (0:
	// off); Stats the guest's latest statistics, by Firecracker's names.
	StatsInterval uint64            `json:"stats-polling-interval"`
	Stats         map[string]uint64 `json:"stats,omitempty"`
}

// memoryCommands adds x-query-vireo-memory when the machine can answer it.
func memoryCommands(s *Server, cmds map[string]command) {
	r, ok := s.m.(MemoryReporter)
	if !ok {
		return
	}
	cmds["x-query-vireo-memory"] = command{run: func(args) (any, error) {
		hm, err := r.HostMemory()
		if err != nil {
			return nil, genericf("%s", err.Error())
		}
		return hm, nil
	}}
}

// hmpHostMemory prints `info vireo-memory`.
func (s *Server) hmpHostMemory(b *strings.Builder) {
	r, ok := s.m.(MemoryReporter)
	if !ok {
		b.WriteString("Error: this machine does not report host memory\n")
		return
	}
	hm, err := r.HostMemory()
	if err != nil {
		fmt.Fprintf(b, "Error: %s\n", err)
		return
	}
	mib := func(n uint64) string { return fmt.Sprintf("%d MiB", n>>20) }
	fmt.Fprintf(b, "guest memory: %s (huge pages: %s, merge: %s, shared: %s)\n",
		mib(hm.GuestMemory), hm.HugePages, onOff(hm.Merge), onOff(hm.Shared))
	fmt.Fprintf(b, "resident: %s\n", mib(hm.Resident))
	fmt.Fprintf(b, "transparent huge pages: %s\n", mib(hm.AnonHugePages))
	fmt.Fprintf(b, "hugetlbfs: %s\n", mib(hm.Hugetlb))
	fmt.Fprintf(b, "KSM: %d pages merging, %s merged in guest RAM, profit %d bytes\n", hm.KSMMergingPages, mib(hm.KSMMerged), hm.KSMProfit)
	fmt.Fprintf(b, "swap: %s\n", mib(hm.Swap))
	fmt.Fprintf(b, "process RSS: %s\n", mib(hm.ProcessRSS))
	if bl := hm.Balloon; bl != nil {
		fmt.Fprintf(b, "balloon: target %s, actual %s, %s discarded, %s reported free\n",
			mib(bl.Target), mib(bl.Actual), mib(bl.Discarded), mib(bl.Reported))
		for _, k := range statNames(bl.Stats) {
			fmt.Fprintf(b, "balloon stat %s: %d\n", k, bl.Stats[k])
		}
	}
}

func onOff(v bool) string {
	if v {
		return "on"
	}
	return "off"
}

// statNames are the keys of stats in a stable order.
func statNames(stats map[string]uint64) []string {
	var out []string
	for _, k := range statOrder {
		if _, ok := stats[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// statOrder is the virtio tag order of the statistics' names.
var statOrder = []string{
	"swap_in", "swap_out", "major_faults", "minor_faults", "free_memory", "total_memory",
	"available_memory", "disk_caches", "hugetlb_allocations", "hugetlb_failures",
	"oom_kill", "alloc_stall", "async_scan", "direct_scan", "async_reclaim", "direct_reclaim",
}
