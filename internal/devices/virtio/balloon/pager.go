package balloon

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// PageSize is the size of a balloon page: PFNs on the inflate and deflate
// queues count 4 KiB pages whatever the guest's own page size
// (VIRTIO_BALLOON_PFN_SHIFT).
const (
	PageSize  = 1 << pageShift
	pageShift = 12
)

// defaultHugePage is the huge page size assumed when /proc/meminfo does
// not say (guestmem maps hugetlbfs RAM in 2 MiB multiples).
const defaultHugePage = 2 << 20

// pager returns guest pages to the host. It works on region offsets
// only: every range it discards is a sub-slice of one guest RAM mapping,
// rounded inwards to whole host pages, so no guest input can make it
// advise memory outside guest RAM.
type pager struct {
	regions  []guestmem.Region
	advice   int    // MADV_DONTNEED (private memory) or MADV_REMOVE (shared)
	hostPage uint64 // the host page size backing guest RAM
	// ballooned has one bit per 4 KiB page of each region when host
	// pages are larger (hugetlbfs): a host page is discarded once every
	// 4 KiB page in it is in the balloon. Nil otherwise.
	ballooned [][]uint64
	madvise   func(b []byte, advice int) error

	// The pending run of contiguous inflated pages, discarded together.
	pending    bool
	runRegion  int
	start, end uint64

	// Totals, read by the device after each batch.
	discarded uint64 // bytes given back to the host
	err       error  // the latest madvise failure, cleared by takeErr
}

func newPager(mem *guestmem.Memory) *pager {
	b := mem.Backing()
	p := &pager{regions: mem.Regions(), advice: unix.MADV_DONTNEED, hostPage: uint64(os.Getpagesize()), madvise: unix.Madvise}
	if b.Shared {
		// MADV_DONTNEED would only unmap shared pages; MADV_REMOVE frees
		// the memfd's backing store too.
		p.advice = unix.MADV_REMOVE
	}
	if b.HugePages == "hugetlbfs" {
		p.hostPage = hugePageSize()
		for _, r := range p.regions {
			p.ballooned = append(p.ballooned, make([]uint64, (r.Size/PageSize+63)/64))
		}
	}
	return p
}

// hugePageSize is the default huge page size of the host (the size
// MAP_HUGETLB and MFD_HUGETLB use).
func hugePageSize() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return defaultHugePage
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != "Hugepagesize" {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err == nil && kb >= 4 && kb&(kb-1) == 0 {
			return kb << 10
		}
	}
	return defaultHugePage
}

// locate finds the region holding [gpa, gpa+n) entirely and returns its
// index and the offset of gpa in it.
func (p *pager) locate(gpa, n uint64) (int, uint64, bool) {
	for i := range p.regions {
		r := &p.regions[i]
		if gpa >= r.GPA && gpa-r.GPA < r.Size && n <= r.Size-(gpa-r.GPA) {
			return i, gpa - r.GPA, true
		}
	}
	return 0, 0, false
}

// inflate takes the 4 KiB page at pfn into the balloon. It reports false
// for a page outside guest RAM, which it ignores. Contiguous pages are
// collected and discarded together by flush or the next discontiguous
// page.
func (p *pager) inflate(pfn uint32) bool {
	ri, off, ok := p.locate(uint64(pfn)<<pageShift, PageSize)
	if !ok {
		return false
	}
	if p.ballooned != nil {
		p.inflateHuge(ri, off)
		return true
	}
	if p.pending && ri == p.runRegion && off == p.end {
		p.end += PageSize
		return true
	}
	p.flush()
	p.pending, p.runRegion, p.start, p.end = true, ri, off, off+PageSize
	return true
}

// flush discards the pending run.
func (p *pager) flush() {
	if p.pending {
		p.pending = false
		p.discard(p.runRegion, p.start, p.end-p.start)
	}
}

// inflateHuge marks a 4 KiB page ballooned and discards its host page
// once all of that page's 4 KiB pages are.
func (p *pager) inflateHuge(ri int, off uint64) {
	bits := p.ballooned[ri]
	i := off / PageSize
	bits[i/64] |= 1 << (i % 64)
	base := off &^ (p.hostPage - 1)
	if base+p.hostPage > p.regions[ri].Size {
		return // a partial host page at the end of a region is never whole
	}
	first, n := base/PageSize, p.hostPage/PageSize
	for j := first; j < first+n; {
		if j%64 == 0 && first+n-j >= 64 {
			if bits[j/64] != ^uint64(0) {
				return
			}
			j += 64
			continue
		}
		if bits[j/64]&(1<<(j%64)) == 0 {
			return
		}
		j++
	}
	p.discard(ri, base, p.hostPage)
}

// deflate takes the 4 KiB page at pfn out of the balloon; the guest
// faults it back in when it touches it. It reports false for a page
// outside guest RAM.
func (p *pager) deflate(pfn uint32) bool {
	ri, off, ok := p.locate(uint64(pfn)<<pageShift, PageSize)
	if !ok {
		return false
	}
	if p.ballooned != nil {
		i := off / PageSize
		p.ballooned[ri][i/64] &^= 1 << (i % 64)
	}
	return true
}

// report discards a free range the guest reported, [gpa, gpa+n), rounded
// inwards to whole host pages. It reports false when the range is not
// inside one region of guest RAM.
func (p *pager) report(gpa, n uint64) bool {
	ri, off, ok := p.locate(gpa, n)
	if !ok {
		return false
	}
	p.discard(ri, off, n)
	return true
}

// discard gives [off, off+n) of region ri back to the host, rounded
// inwards to whole host pages.
func (p *pager) discard(ri int, off, n uint64) {
	r := &p.regions[ri]
	if off > r.Size || n > r.Size-off {
		return
	}
	start := (off + p.hostPage - 1) &^ (p.hostPage - 1)
	end := (off + n) &^ (p.hostPage - 1)
	if start >= end {
		return
	}
	if err := p.madvise(r.Host[start:end:end], p.advice); err != nil {
		p.err = err
		return
	}
	p.discarded += end - start
}

// takeErr returns and clears the latest madvise failure.
func (p *pager) takeErr() error {
	err := p.err
	p.err = nil
	return err
}

// reset forgets which pages are in the balloon.
func (p *pager) reset() {
	p.pending = false
	for _, b := range p.ballooned {
		clear(b)
	}
}
