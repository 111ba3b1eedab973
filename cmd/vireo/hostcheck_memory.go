package main

import (
	"fmt"

	"github.com/vireo-vmm/vireo/internal/hostmem"
)

// memoryChecks reports KSM, transparent huge pages and hugetlbfs: whether
// --memory's merge=on and hugepages= can work, and how much they are in
// use host-wide right now.
func memoryChecks(line func(what, verdict, detail string), ksm hostmem.KSM, hp hostmem.HugePages) {
	const ksmName = "Memory: KSM (merge=on)"
	switch {
	case !ksm.Available:
		line(ksmName, "WARN", "not available in this kernel")
	case ksm.Run == 1:
		line(ksmName, "PASS", fmt.Sprintf("running, scanning %d pages every %d ms", ksm.PagesToScan, ksm.SleepMillis))
	default:
		line(ksmName, "WARN", "available but not running: echo 1 > /sys/kernel/mm/ksm/run")
	}
	if ksm.Available {
		line("Memory: KSM merged pages", "INFO", fmt.Sprintf(
			"%d shared, %d sharing them (%d MiB saved), %d unshared, %d full scans",
			ksm.PagesShared, ksm.PagesSharing, ksm.PagesSharing*4>>10, ksm.PagesUnshared, ksm.FullScans))
	}

	const thpName = "Memory: transparent huge pages (hugepages=thp)"
	switch hp.THPEnabled {
	case "always", "madvise":
		line(thpName, "PASS", fmt.Sprintf("enabled [%s], defrag [%s]", hp.THPEnabled, hp.THPDefrag))
	case "":
		line(thpName, "WARN", "not available")
	default:
		line(thpName, "WARN", fmt.Sprintf("enabled [%s]: echo madvise > /sys/kernel/mm/transparent_hugepage/enabled", hp.THPEnabled))
	}
	if hp.THPEnabled != "" {
		line("Memory: transparent huge pages in use", "INFO", fmt.Sprintf("%d MiB of anonymous memory", hp.AnonHugePages>>20))
	}

	const tlbName = "Memory: hugetlbfs pages (hugepages=on)"
	if hp.HugetlbTotal == 0 {
		line(tlbName, "WARN", "none reserved: echo N > /proc/sys/vm/nr_hugepages")
		return
	}
	used := hp.HugetlbTotal - min(hp.HugetlbFree, hp.HugetlbTotal)
	line(tlbName, "PASS", fmt.Sprintf("%d reserved of %d KiB, %d in use, %d free (%d promised)",
		hp.HugetlbTotal, hp.HugetlbPageSize>>10, used, hp.HugetlbFree, hp.HugetlbReserved))
}
