package balloon

import (
	"errors"
	"testing"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

// advice records what a pager asked the host to drop, as guest ranges.
type advice struct {
	t     *testing.T
	p     *pager
	calls [][2]uint64
	fail  error
}

func (a *advice) madvise(b []byte, _ int) error {
	gpa, ok := gpaOf(a.p.regions, b)
	if !ok {
		a.t.Fatalf("madvise on memory outside guest RAM")
	}
	if _, _, ok := a.p.locate(gpa, uint64(len(b))); !ok {
		a.t.Fatalf("madvise on %#x+%#x, which leaves its region", gpa, len(b))
	}
	if a.fail != nil {
		return a.fail
	}
	a.calls = append(a.calls, [2]uint64{gpa, uint64(len(b))})
	return nil
}

func (a *advice) take() [][2]uint64 {
	c := a.calls
	a.calls = nil
	return c
}

// hugePager is a pager that behaves as if RAM were backed by 2 MiB pages.
func hugePager(t *testing.T, mem *guestmem.Memory) (*pager, *advice) {
	p := newPager(mem)
	a := &advice{t: t, p: p}
	p.madvise = a.madvise
	p.hostPage = 2 << 20
	p.ballooned = nil
	for _, r := range p.regions {
		p.ballooned = append(p.ballooned, make([]uint64, (r.Size/PageSize+63)/64))
	}
	return p, a
}

func TestHugePageDiscardedWhenWhole(t *testing.T) {
	p, a := hugePager(t, virtiotest.NewMemory(t, 8<<20))
	first := uint32((2 << 20) / PageSize)
	for i := range uint32(511) {
		p.inflate(first + i)
	}
	if c := a.take(); len(c) != 0 {
		t.Fatalf("a partly ballooned huge page was discarded: %v", c)
	}
	p.inflate(first + 511)
	if c := a.take(); len(c) != 1 || c[0] != [2]uint64{2 << 20, 2 << 20} {
		t.Fatalf("discards %v, want the huge page at 2 MiB", c)
	}
	// Deflate one page and inflate it again: the whole page goes again.
	p.deflate(first + 7)
	p.inflate(first + 7)
	if c := a.take(); len(c) != 1 {
		t.Fatalf("re-inflation discards %v", c)
	}
	p.deflate(first + 7)
	p.reset()
	p.inflate(first + 7)
	if c := a.take(); len(c) != 0 {
		t.Fatalf("after reset one page discarded %v", c)
	}
	// Reports are rounded inwards to whole huge pages.
	if !p.report(2<<20+PageSize, 4<<20) {
		t.Fatal("report refused")
	}
	if c := a.take(); len(c) != 1 || c[0] != [2]uint64{4 << 20, 2 << 20} {
		t.Fatalf("report discards %v, want [4 MiB, 6 MiB)", c)
	}
	if p.report(6<<20, 4<<20) || p.report(^uint64(0)-PageSize, 2*PageSize) {
		t.Error("a report leaving guest RAM was accepted")
	}
}

func TestPagerRuns(t *testing.T) {
	mem, err := guestmem.New([]guestmem.RegionSpec{{GPA: 0, Size: 1 << 20}, {GPA: 1 << 20, Size: 1 << 20}}, guestmem.Backing{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	p := newPager(mem)
	a := &advice{t: t, p: p}
	p.madvise = a.madvise
	// A run that crosses from one region into the next, adjacent one is
	// split at the boundary; a backwards step starts a new run.
	for _, pfn := range []uint32{254, 255, 256, 257, 3, 2} {
		if !p.inflate(pfn) {
			t.Fatalf("pfn %d refused", pfn)
		}
	}
	p.flush()
	want := [][2]uint64{{254 * PageSize, 2 * PageSize}, {256 * PageSize, 2 * PageSize}, {3 * PageSize, PageSize}, {2 * PageSize, PageSize}}
	if c := a.take(); len(c) != len(want) {
		t.Fatalf("discards %v, want %v", c, want)
	} else {
		for i := range want {
			if c[i] != want[i] {
				t.Errorf("discard %d = %v, want %v", i, c[i], want[i])
			}
		}
	}
	if p.discarded != 6*PageSize {
		t.Errorf("discarded %d", p.discarded)
	}
	a.fail = errors.New("EINVAL")
	p.inflate(10)
	p.flush()
	if err := p.takeErr(); err == nil || p.takeErr() != nil {
		t.Errorf("takeErr = %v, then not cleared", err)
	}
	if p.discarded != 6*PageSize {
		t.Errorf("a failed discard counted: %d", p.discarded)
	}
}
