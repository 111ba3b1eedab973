package vmm

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// checkHostMemory refuses guest RAM larger than the host's RAM plus swap:
// guest memory is mapped lazily, so such a guest would start and then be
// killed when it touched its memory.
func checkHostMemory(want uint64) error {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return nil // cannot tell; let the mapping decide
	}
	defer f.Close()
	var total, swap uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "MemTotal":
			total = n << 10
		case "SwapTotal":
			swap = n << 10
		}
	}
	if total > 0 && want > total+swap {
		return fmt.Errorf("%w: %d MiB of guest memory requested but this host has %d MiB of RAM and swap", ErrConfig, want>>20, (total+swap)>>20)
	}
	return nil
}
