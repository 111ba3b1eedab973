package hostmem

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// KSMDir is where the kernel exposes KSM's controls and counters.
const KSMDir = "/sys/kernel/mm/ksm"

// KSM is the host's kernel samepage merging state. Page counts are in
// base pages.
type KSM struct {
	// Available is false when the kernel has no KSM.
	Available bool
	// Run is 0 (stopped), 1 (merging) or 2 (unmerging everything).
	Run           int
	PagesShared   uint64 // distinct merged pages in use
	PagesSharing  uint64 // further pages that share them: the pages saved
	PagesUnshared uint64 // pages scanned but unique
	PagesVolatile uint64 // pages changing too fast to merge
	FullScans     uint64 // complete passes over mergeable memory
	ZeroPages     uint64 // pages merged with the zero page (use_zero_pages)
	PagesToScan   uint64 // pages scanned per wake-up
	SleepMillis   uint64 // sleep between wake-ups
}

// ReadKSM reads the host's KSM state from dir (KSMDir on a real host);
// files that are missing read as zero.
func ReadKSM(dir string) KSM {
	num := func(name string) uint64 {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0
		}
		n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return n
	}
	_, err := os.Stat(filepath.Join(dir, "run"))
	return KSM{
		Available:     err == nil,
		Run:           int(min(num("run"), 2)),
		PagesShared:   num("pages_shared"),
		PagesSharing:  num("pages_sharing"),
		PagesUnshared: num("pages_unshared"),
		PagesVolatile: num("pages_volatile"),
		FullScans:     num("full_scans"),
		ZeroPages:     num("ksm_zero_pages"),
		PagesToScan:   num("pages_to_scan"),
		SleepMillis:   num("sleep_millisecs"),
	}
}

// ProcessKSM is one process's KSM counters (/proc/PID/ksm_stat).
type ProcessKSM struct {
	MergingPages uint64 // this process's pages currently merged
	ZeroPages    uint64 // its pages merged with the zero page
	RmapItems    uint64 // pages KSM tracks for it
	Profit       int64  // bytes saved minus KSM's own overhead
}

// ParseKSMStat parses /proc/PID/ksm_stat ("name value" lines); unknown
// and malformed lines are skipped.
func ParseKSMStat(r io.Reader) (ProcessKSM, error) {
	var p ProcessKSM
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if k == "ksm_process_profit" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				p.Profit = n
			}
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "ksm_merging_pages":
			p.MergingPages = n
		case "ksm_zero_pages":
			p.ZeroPages = n
		case "ksm_rmap_items":
			p.RmapItems = n
		}
	}
	if err := sc.Err(); err != nil {
		return p, fmt.Errorf("%w: ksm_stat: %w", ErrParse, err)
	}
	return p, nil
}

// ReadProcessKSM reads a process's KSM counters (pid 0: this process):
// /proc/PID/ksm_stat, or the older /proc/PID/ksm_merging_pages alone.
func ReadProcessKSM(pid int) (ProcessKSM, error) {
	if f, err := os.Open(procPath(pid, "ksm_stat")); err == nil {
		defer f.Close()
		return ParseKSMStat(f)
	}
	b, err := os.ReadFile(procPath(pid, "ksm_merging_pages"))
	if err != nil {
		return ProcessKSM{}, fmt.Errorf("hostmem: KSM counters: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return ProcessKSM{}, fmt.Errorf("%w: ksm_merging_pages: %q", ErrParse, b)
	}
	return ProcessKSM{MergingPages: n}, nil
}
