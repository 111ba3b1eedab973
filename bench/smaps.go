package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Errors from reading a process's memory map.
var (
	ErrSmapsSyntax = errors.New("malformed smaps")
	ErrNoGuestRAM  = errors.New("no anonymous mapping of the guest memory size")
)

// mapping is one entry of /proc/PID/smaps, sizes in bytes.
type mapping struct {
	Start, End uint64
	Perms      string
	Path       string // "" for an anonymous mapping
	Size       uint64
	Rss        uint64 // resident, including hugetlbfs pages
}

// parseSmaps reads the text of /proc/PID/smaps.
func parseSmaps(r io.Reader) ([]mapping, error) {
	var maps []mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if key, ok := strings.CutSuffix(fields[0], ":"); ok {
			if len(maps) == 0 {
				return nil, fmt.Errorf("%w: line %d: field %q before any mapping", ErrSmapsSyntax, line, key)
			}
			if err := maps[len(maps)-1].setField(key, fields[1:]); err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrSmapsSyntax, line, err)
			}
			continue
		}
		m, err := parseMappingHeader(sc.Text(), fields)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrSmapsSyntax, line, err)
		}
		maps = append(maps, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read smaps: %w", err)
	}
	return maps, nil
}

// parseMappingHeader parses "start-end perms offset dev inode [path]".
func parseMappingHeader(text string, fields []string) (mapping, error) {
	if len(fields) < 5 {
		return mapping{}, fmt.Errorf("mapping header %q has %d fields, want at least 5", text, len(fields))
	}
	lo, hi, ok := strings.Cut(fields[0], "-")
	if !ok {
		return mapping{}, fmt.Errorf("address range %q has no '-'", fields[0])
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || end < start {
		return mapping{}, fmt.Errorf("invalid address range %q", fields[0])
	}
	m := mapping{Start: start, End: end, Perms: fields[1]}
	if len(fields) > 5 {
		// The path is the rest of the line after the inode; it may hold spaces.
		rest := text
		for _, f := range fields[:5] {
			rest = strings.TrimLeft(rest, " \t")
			rest = rest[len(f):]
		}
		m.Path = strings.TrimSpace(rest)
	}
	return m, nil
}

// setField records the size fields this program uses; others are ignored.
func (m *mapping) setField(key string, args []string) error {
	switch key {
	case "Size", "Rss", "Shared_Hugetlb", "Private_Hugetlb":
	default:
		return nil
	}
	if len(args) != 2 || args[1] != "kB" {
		return fmt.Errorf("field %s: want \"<n> kB\", got %q", key, strings.Join(args, " "))
	}
	n, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil || n > 1<<40 { // 1 PiB: far beyond any real mapping
		return fmt.Errorf("field %s: invalid size %q", key, args[0])
	}
	switch key {
	case "Size":
		m.Size = n << 10
	default:
		m.Rss += n << 10
	}
	return nil
}

// anonymous reports whether m is anonymous memory (possibly named, or a
// memfd, as guest RAM shared with other processes is).
func (m mapping) anonymous() bool {
	return m.Path == "" || strings.HasPrefix(m.Path, "[anon:") || strings.HasPrefix(m.Path, "/memfd:")
}

// memUsage splits a VMM's resident memory into guest RAM and the rest.
type memUsage struct {
	Total    uint64 // resident bytes of the whole process
	Guest    uint64 // resident bytes of the guest RAM mapping
	Overhead uint64 // Total - Guest
	// Ambiguous is set when several anonymous mappings had the guest
	// memory size; the most resident one was taken as guest RAM.
	Ambiguous bool
	// Merged is how many bytes of other anonymous memory the kernel had
	// merged into the guest RAM mapping (adjacent mappings with the same
	// flags become one). They are assumed resident and counted as
	// overhead, so Overhead is then an upper bound.
	Merged uint64
	// Top lists the largest resident mappings other than guest RAM.
	Top []mapping
}

// topMappings is how many non-guest mappings memUsage.Top keeps.
const topMappings = 6

// maxMerged bounds how much larger than guest RAM a mapping may be and
// still be taken for guest RAM merged with a neighbour.
const maxMerged = 64 << 20

// splitUsage finds the guest RAM mapping in maps and returns the process's
// resident memory split into guest RAM and VMM overhead. Guest RAM is the
// anonymous mapping exactly guestBytes long; failing that, the smallest
// anonymous read-write mapping at most maxMerged longer (guest RAM merged
// with a neighbour).
func splitUsage(maps []mapping, guestBytes uint64) (memUsage, error) {
	var u memUsage
	guest := -1
	for i, m := range maps {
		u.Total += m.Rss
		if m.anonymous() && m.Size == guestBytes {
			if guest >= 0 {
				u.Ambiguous = true
				if m.Rss <= maps[guest].Rss {
					continue
				}
			}
			guest = i
		}
	}
	if guest < 0 {
		for i, m := range maps {
			if m.anonymous() && strings.HasPrefix(m.Perms, "rw") && m.Size > guestBytes && m.Size-guestBytes <= maxMerged &&
				(guest < 0 || m.Size < maps[guest].Size) {
				guest = i
			}
		}
		if guest < 0 {
			return memUsage{}, fmt.Errorf("%w (%d MiB) among %d mappings", ErrNoGuestRAM, guestBytes>>20, len(maps))
		}
		u.Merged = maps[guest].Size - guestBytes
	}
	u.Guest = maps[guest].Rss - min(maps[guest].Rss, u.Merged)
	u.Overhead = u.Total - u.Guest
	for i, m := range maps {
		if i != guest && m.Rss > 0 {
			u.Top = append(u.Top, m)
		}
	}
	sort.SliceStable(u.Top, func(i, j int) bool { return u.Top[i].Rss > u.Top[j].Rss })
	if len(u.Top) > topMappings {
		u.Top = u.Top[:topMappings]
	}
	return u, nil
}

// readUsage reads /proc/PID/smaps and splits its resident memory.
func readUsage(pid int, guestBytes uint64) (memUsage, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return memUsage{}, fmt.Errorf("memory map: %w", err)
	}
	defer f.Close()
	maps, err := parseSmaps(f)
	if err != nil {
		return memUsage{}, fmt.Errorf("/proc/%d/smaps: %w", pid, err)
	}
	return splitUsage(maps, guestBytes)
}
