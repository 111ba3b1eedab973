package loader

import (
	"io"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// LoadInitrd copies an initrd of size bytes from r into guest RAM, page
// aligned and as high as possible below min(end of the RAM region at GPA 0,
// 4 GiB, the kernel's initrd_addr_max + 1) and above k.End. It returns the
// initrd's GPA.
func LoadInitrd(mem *guestmem.Memory, k *Kernel, r io.ReaderAt, size int64) (gpa uint64, err error) {
	if size <= 0 {
		return 0, errorf(ErrInvalid, "initrd is empty")
	}
	n := uint64(size)
	limit := min(firstRegionEnd(mem), fourGiB)
	if k.InitrdAddrMax != 0 && k.InitrdAddrMax < limit {
		limit = k.InitrdAddrMax + 1
	}
	// Never below 1 MiB, where the boot data lives, whatever k says.
	floor, _ := alignUp(max(k.End, x86.HighMemStart), pageSize)
	if floor < k.End || limit < floor || n > limit-floor {
		return 0, errorf(ErrTooLarge, "initrd is %s but only %s of RAM is free between the kernel and %s",
			human(n), human(max(limit, floor)-floor), human(limit))
	}
	// floor is page aligned, so rounding down keeps the initrd above it.
	gpa = (limit - n) &^ (pageSize - 1)
	if err := readInto(mem, r, 0, gpa, n); err != nil {
		return 0, err
	}
	return gpa, nil
}
