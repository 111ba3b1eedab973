package loader

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
)

func TestLoadInitrdPlacement(t *testing.T) {
	tests := []struct {
		name      string
		ram       uint64
		k         Kernel
		size      int
		wantLimit uint64 // the initrd ends within one page below this
	}{
		{"top of RAM", 128 * mib, Kernel{End: 4 * mib}, mib + 123, 128 * mib},
		{"initrd_addr_max", 128 * mib, Kernel{End: 4 * mib, InitrdAddrMax: 64*mib - 1}, 5000, 64 * mib},
		{"initrd_addr_max above RAM", 128 * mib, Kernel{End: 4 * mib, InitrdAddrMax: 0x7fffffff}, 4096, 128 * mib},
		{"exact fit", 16 * mib, Kernel{End: 4 * mib}, 12 * mib, 16 * mib},
		{"RAM above the hole", x86.MMIOHoleStart + 16*mib, Kernel{End: 4 * mib}, 3 * mib, x86.MMIOHoleStart},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem(t, tc.ram)
			data := pattern(tc.size, 9)
			gpa, err := LoadInitrd(mem, &tc.k, bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			end := gpa + uint64(len(data))
			if gpa%pageSize != 0 || gpa < tc.k.End || end > tc.wantLimit || end+pageSize <= tc.wantLimit {
				t.Errorf("initrd at %#x-%#x, want page aligned, above %#x, ending in the page below %#x", gpa, end, tc.k.End, tc.wantLimit)
			}
			if !bytes.Equal(guestBytes(t, mem, gpa, uint64(len(data))), data) {
				t.Error("initrd contents differ")
			}
		})
	}
}

func TestLoadInitrdErrors(t *testing.T) {
	mem := newMem(t, 16*mib)
	k := &Kernel{End: 4 * mib}
	_, err := LoadInitrd(mem, k, bytes.NewReader(nil), 0)
	checkErr(t, err, ErrInvalid)

	big := make([]byte, 12*mib+1)
	_, err = LoadInitrd(mem, k, bytes.NewReader(big), int64(len(big)))
	checkErr(t, err, ErrTooLarge)
	if want := "initrd is 12.0 MiB but only 12 MiB of RAM is free"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want %q", err, want)
	}

	// initrd_addr_max leaves less room than RAM does.
	k2 := &Kernel{End: 4 * mib, InitrdAddrMax: 8*mib + 100 - 1}
	odd := make([]byte, 4*mib+200)
	_, err = LoadInitrd(mem, k2, bytes.NewReader(odd), int64(len(odd)))
	checkErr(t, err, ErrTooLarge)

	_, err = LoadInitrd(mem, &Kernel{End: 32 * mib}, bytes.NewReader(big[:10]), 10)
	checkErr(t, err, ErrTooLarge)

	_, err = LoadInitrd(mem, &Kernel{End: 1<<64 - 1}, bytes.NewReader(big[:10]), 10)
	checkErr(t, err, ErrTooLarge)

	_, err = LoadInitrd(mem, k, bytes.NewReader(big[:10]), 4096) // file shorter than size
	checkErr(t, err, ErrTruncated)
}

func TestLoadInitrdNeverBelow1MiB(t *testing.T) {
	mem := newMem(t, 2*mib)
	data := make([]byte, mib+1)
	_, err := LoadInitrd(mem, &Kernel{}, bytes.NewReader(data), int64(len(data)))
	checkErr(t, err, ErrTooLarge)
}
