package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrStat reports an unreadable /proc stat file.
var ErrStat = errors.New("proc stat")

// clockTick is USER_HZ, the unit of utime and stime in /proc (100 on
// every Linux x86-64 build).
const clockTick = 10 * time.Millisecond

// cpuTimes is the CPU time a process has used, in total (its live and
// exited threads) and in its vCPU threads (which, on hosts whose KVM
// emulates guest kernel code, includes that emulation).
type cpuTimes struct {
	total, vcpu time.Duration
}

// other is the time of the threads that are not vCPUs: the VMM's own
// device emulation, I/O and main loop.
func (c cpuTimes) other() time.Duration { return c.total - c.vcpu }

func (c cpuTimes) sub(d cpuTimes) cpuTimes {
	return cpuTimes{total: c.total - d.total, vcpu: c.vcpu - d.vcpu}
}

// readCPU samples pid's CPU times; vcpus are its vCPU thread ids.
func readCPU(pid int, vcpus []int) (cpuTimes, error) {
	total, err := statTime(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTimes{}, err
	}
	c := cpuTimes{total: total}
	for _, tid := range vcpus {
		t, err := statTime(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
		if err != nil {
			return cpuTimes{}, err
		}
		c.vcpu += t
	}
	return c, nil
}

// statTime returns utime+stime from a /proc stat file.
func statTime(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrStat, err)
	}
	return parseStat(string(b))
}

// parseStat extracts utime+stime (fields 14 and 15) from the text of a
// stat file; the command name (field 2) may contain spaces and parentheses.
func parseStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: no command name", ErrStat)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: %d fields", ErrStat, len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%w: utime %q stime %q", ErrStat, f[11], f[12])
	}
	return time.Duration(utime+stime) * clockTick, nil
}
