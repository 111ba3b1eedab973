package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/hostmem"
)

func TestMemoryChecks(t *testing.T) {
	run := func(k hostmem.KSM, h hostmem.HugePages) string {
		var b strings.Builder
		memoryChecks(func(what, verdict, detail string) { fmt.Fprintf(&b, "%s: %s (%s)\n", what, verdict, detail) }, k, h)
		return b.String()
	}
	out := run(hostmem.KSM{Available: true, Run: 1, PagesShared: 10, PagesSharing: 512, PagesToScan: 100, SleepMillis: 20},
		hostmem.HugePages{THPEnabled: "madvise", THPDefrag: "defer", AnonHugePages: 64 << 20, HugetlbTotal: 8, HugetlbFree: 6, HugetlbPageSize: 2 << 20})
	for _, want := range []string{
		"KSM (merge=on): PASS (running, scanning 100 pages every 20 ms)",
		"KSM merged pages: INFO (10 shared, 512 sharing them (2 MiB saved)",
		"(hugepages=thp): PASS (enabled [madvise], defrag [defer])",
		"transparent huge pages in use: INFO (64 MiB",
		"(hugepages=on): PASS (8 reserved of 2048 KiB, 2 in use, 6 free",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	out = run(hostmem.KSM{}, hostmem.HugePages{THPEnabled: "never"})
	for _, want := range []string{"KSM (merge=on): WARN (not available", "(hugepages=thp): WARN (enabled [never]", "(hugepages=on): WARN (none reserved"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if out := run(hostmem.KSM{Available: true}, hostmem.HugePages{}); !strings.Contains(out, "available but not running") || strings.Contains(out, "in use") {
		t.Errorf("stopped KSM, no THP:\n%s", out)
	}
}
