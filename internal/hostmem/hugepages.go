package hostmem

import (
	"bufio"
	"io"
	"os"
	"strings"
)

// THPDir is where the kernel exposes transparent huge page settings.
const THPDir = "/sys/kernel/mm/transparent_hugepage"

// HugePages is the host's huge page state. Sizes are in bytes.
type HugePages struct {
	// THPEnabled and THPDefrag are the selected transparent huge page
	// modes ("always", "madvise", "never", ...; "" without THP).
	THPEnabled, THPDefrag string
	// AnonHugePages is anonymous memory in transparent huge pages,
	// host-wide.
	AnonHugePages uint64
	// The hugetlbfs pool of the default huge page size.
	HugetlbTotal, HugetlbFree, HugetlbReserved uint64 // pages
	HugetlbPageSize                            uint64
}

// ReadHugePages reads /proc/meminfo and the THP settings under thpDir
// (THPDir on a real host).
func ReadHugePages(thpDir string) HugePages {
	var h HugePages
	if f, err := os.Open("/proc/meminfo"); err == nil {
		h = ParseMeminfo(f)
		f.Close()
	}
	h.THPEnabled = selected(readFile(thpDir + "/enabled"))
	h.THPDefrag = selected(readFile(thpDir + "/defrag"))
	return h
}

// ParseMeminfo takes the huge page lines of /proc/meminfo.
func ParseMeminfo(r io.Reader) HugePages {
	var h HugePages
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, ok := parseKB(v)
		if !ok {
			continue
		}
		switch k {
		case "AnonHugePages":
			h.AnonHugePages = n
		case "HugePages_Total":
			h.HugetlbTotal = n
		case "HugePages_Free":
			h.HugetlbFree = n
		case "HugePages_Rsvd":
			h.HugetlbReserved = n
		case "Hugepagesize":
			h.HugetlbPageSize = n
		}
	}
	return h
}

// selected picks the bracketed choice of a sysfs setting such as
// "always [madvise] never".
func selected(s string) string {
	if i := strings.IndexByte(s, '['); i >= 0 {
		if j := strings.IndexByte(s[i:], ']'); j > 0 {
			return s[i+1 : i+j]
		}
	}
	return strings.TrimSpace(s)
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
