package balloon

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Tag identifies one guest memory statistic (virtio 1.2, 5.5.6.3).
type Tag uint16

// The statistics a guest may report. Linux 6.1 without
// CONFIG_VM_EVENT_COUNTERS sends only the four memory sizes.
const (
	TagSwapIn             Tag = 0  // bytes swapped in
	TagSwapOut            Tag = 1  // bytes swapped out
	TagMajorFaults        Tag = 2  // major page faults
	TagMinorFaults        Tag = 3  // minor page faults
	TagFreeMemory         Tag = 4  // bytes not used for anything
	TagTotalMemory        Tag = 5  // bytes of memory the guest manages
	TagAvailableMemory    Tag = 6  // bytes available to new programs without swapping
	TagDiskCaches         Tag = 7  // bytes of file cache
	TagHugetlbAllocations Tag = 8  // successful hugetlb page allocations
	TagHugetlbFailures    Tag = 9  // failed hugetlb page allocations
	TagOOMKills           Tag = 10 // OOM killer invocations
	TagAllocStalls        Tag = 11 // allocation stalls
	TagAsyncScans         Tag = 12 // pages scanned by kswapd
	TagDirectScans        Tag = 13 // pages scanned by direct reclaim
	TagAsyncReclaims      Tag = 14 // pages reclaimed by kswapd
	TagDirectReclaims     Tag = 15 // pages reclaimed by direct reclaim

	// NumTags is the number of tags the device understands; it ignores
	// others.
	NumTags = 16
)

// tagNames are Firecracker's names for the statistics (its
// GET /balloon/statistics members).
var tagNames = [NumTags]string{
	"swap_in", "swap_out", "major_faults", "minor_faults",
	"free_memory", "total_memory", "available_memory", "disk_caches",
	"hugetlb_allocations", "hugetlb_failures", "oom_kill", "alloc_stall",
	"async_scan", "direct_scan", "async_reclaim", "direct_reclaim",
}

func (t Tag) String() string {
	if t < NumTags {
		return tagNames[t]
	}
	return fmt.Sprintf("tag_%d", uint16(t))
}

// statSize is the size of one struct virtio_balloon_stat (le16 tag, le64
// value, packed).
const statSize = 10

// maxStats bounds the entries parsed from one statistics buffer; Linux
// sends at most NumTags.
const maxStats = 64

// Stats is the guest's latest report. Only the tags in Present were
// reported.
type Stats struct {
	Values  [NumTags]uint64
	Present uint32 // bit i: Values[i] was reported
	// Updated is when the device received the report (zero: never).
	Updated time.Time
}

// Get returns a statistic and whether the guest reported it.
func (s Stats) Get(t Tag) (uint64, bool) {
	if t >= NumTags || s.Present&(1<<t) == 0 {
		return 0, false
	}
	return s.Values[t], true
}

// Each calls fn for every reported statistic, in tag order.
func (s Stats) Each(fn func(t Tag, v uint64)) {
	for t := Tag(0); t < NumTags; t++ {
		if s.Present&(1<<t) != 0 {
			fn(t, s.Values[t])
		}
	}
}

// parseStats decodes a statistics buffer: whole 10-byte entries, at most
// maxStats of them; a trailing partial entry and unknown tags are
// ignored, and a later entry for a tag replaces an earlier one. It
// reports how many entries it decoded.
func parseStats(b []byte, into *Stats) int {
	n := min(len(b)/statSize, maxStats)
	for i := range n {
		e := b[i*statSize : (i+1)*statSize]
		t := Tag(binary.LittleEndian.Uint16(e))
		if t >= NumTags {
			continue
		}
		into.Values[t] = binary.LittleEndian.Uint64(e[2:])
		into.Present |= 1 << t
	}
	return n
}
