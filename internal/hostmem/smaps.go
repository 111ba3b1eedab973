// Package hostmem reads how the host backs memory: the mappings of a
// process (/proc/PID/smaps), kernel samepage merging (KSM, in
// /sys/kernel/mm/ksm and /proc/PID/ksm_stat) and huge pages (/proc/meminfo
// and /sys/kernel/mm/transparent_hugepage). Every parser treats its input
// as untrusted text: malformed lines are skipped or reported as errors,
// never a panic.
package hostmem

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ErrParse reports a /proc or /sys file that does not have the expected
// form.
var ErrParse = errors.New("hostmem: unexpected file format")

// Range is a range of virtual addresses, [Start, End).
type Range struct{ Start, End uint64 }

// Usage sums the smaps entries of the mappings inside a Range. Sizes are
// in bytes.
type Usage struct {
	Mappings       int    // mappings (VMAs) found inside the range
	Size           uint64 // mapped bytes
	Rss            uint64 // resident
	Anonymous      uint64 // resident anonymous memory
	KSM            uint64 // resident pages merged by KSM (0 where smaps lacks the field)
	AnonHugePages  uint64 // anonymous memory in transparent huge pages
	ShmemPmdMapped uint64 // shared memory mapped with huge pages
	SharedHugetlb  uint64 // hugetlbfs pages shared with another mapping
	PrivateHugetlb uint64 // hugetlbfs pages of this mapping alone
	Swap           uint64 // swapped out
	KernelPageSize uint64 // the largest page size among the mappings
	// Flags are the VmFlags every mapping has: "hg" (MADV_HUGEPAGE), "mg"
	// (MADV_MERGEABLE), "ht" (hugetlbfs) and so on, space separated.
	Flags string
}

// Hugetlb is the range's hugetlbfs memory.
func (u Usage) Hugetlb() uint64 { return u.SharedHugetlb + u.PrivateHugetlb }

// maxLine bounds one smaps line; real ones are well under 1 KiB (a
// mapping's path can be long).
const maxLine = 64 << 10

// ParseSmaps reads smaps text and sums the mappings that lie entirely
// inside each of ranges; the result has one Usage per range.
func ParseSmaps(r io.Reader, ranges []Range) ([]Usage, error) {
	out := make([]Usage, len(ranges))
	flags := make([]map[string]bool, len(ranges))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	cur := -1 // index of the range holding the current mapping
	for sc.Scan() {
		line := sc.Text()
		if start, end, ok := parseHeader(line); ok {
			cur = -1
			for i, rg := range ranges {
				if start >= rg.Start && end <= rg.End && start < end {
					cur = i
					out[i].Mappings++
					out[i].Size += end - start
					break
				}
			}
			continue
		}
		if cur < 0 {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if key == "VmFlags" {
			flags[cur] = intersect(flags[cur], strings.Fields(val))
			continue
		}
		n, ok := parseKB(val)
		if !ok {
			continue
		}
		u := &out[cur]
		switch key {
		case "Rss":
			u.Rss += n
		case "Anonymous":
			u.Anonymous += n
		case "KSM":
			u.KSM += n
		case "AnonHugePages":
			u.AnonHugePages += n
		case "ShmemPmdMapped":
			u.ShmemPmdMapped += n
		case "Shared_Hugetlb":
			u.SharedHugetlb += n
		case "Private_Hugetlb":
			u.PrivateHugetlb += n
		case "Swap":
			u.Swap += n
		case "KernelPageSize":
			u.KernelPageSize = max(u.KernelPageSize, n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: smaps: %w", ErrParse, err)
	}
	for i, f := range flags {
		out[i].Flags = joinFlags(f)
	}
	return out, nil
}

// ProcessSmaps reads /proc/PID/smaps (pid 0: this process) and sums the
// mappings inside each of ranges.
func ProcessSmaps(pid int, ranges []Range) ([]Usage, error) {
	f, err := os.Open(procPath(pid, "smaps"))
	if err != nil {
		return nil, fmt.Errorf("hostmem: %w", err)
	}
	defer f.Close()
	return ParseSmaps(f, ranges)
}

func procPath(pid int, name string) string {
	if pid == 0 {
		return "/proc/self/" + name
	}
	return fmt.Sprintf("/proc/%d/%s", pid, name)
}

// parseHeader recognises a mapping's first line, "start-end perms ...",
// with hexadecimal addresses.
func parseHeader(line string) (start, end uint64, ok bool) {
	addrs, rest, ok := strings.Cut(line, " ")
	if !ok || rest == "" {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(addrs, "-")
	if !ok {
		return 0, 0, false
	}
	start, err1 := strconv.ParseUint(a, 16, 64)
	end, err2 := strconv.ParseUint(b, 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return start, end, true
}

// parseKB parses "   1234 kB" into bytes.
func parseKB(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	num, unit, _ := strings.Cut(s, " ")
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > 1<<53 {
		return 0, false
	}
	switch unit {
	case "kB":
		return n << 10, true
	case "":
		return n, true
	}
	return 0, false
}

// intersect keeps the flags present in both; nil means "not seen yet".
func intersect(have map[string]bool, flags []string) map[string]bool {
	next := make(map[string]bool, len(flags))
	for _, f := range flags {
		if have == nil || have[f] {
			next[f] = true
		}
	}
	return next
}

func joinFlags(f map[string]bool) string {
	var out []string
	for _, k := range knownFlags {
		if f[k] {
			out = append(out, k)
		}
	}
	return strings.Join(out, " ")
}

// knownFlags are the VmFlags reported, in this order.
var knownFlags = []string{"rd", "wr", "sh", "hg", "nh", "mg", "ht", "dd"}
