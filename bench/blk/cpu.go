package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrStat reports an unreadable /proc file.
var ErrStat = errors.New("proc stat")

// cpuTimes is the CPU time a process has used, in total and in its vCPU
// threads (which, on hosts whose KVM emulates guest kernel code, includes
// that emulation).
type cpuTimes struct {
	total, vcpu time.Duration
}

// other is the time of the threads that are not vCPUs: the VMM's own
// device emulation, I/O and main loop.
func (c cpuTimes) other() time.Duration { return c.total - c.vcpu }

// threadCPU is the CPU time of each live thread of a process, from
// /proc/PID/task/TID/schedstat (nanoseconds, unlike the clock ticks of
// /proc/PID/stat: the VMMs' own work during one measurement is a few
// milliseconds).
type threadCPU map[int]time.Duration

// readThreads samples every live thread of pid.
func readThreads(pid int) (threadCPU, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStat, err)
	}
	out := threadCPU{}
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("%s/%d/schedstat", dir, tid))
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) < 1 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: schedstat of thread %d: %q", ErrStat, tid, b)
		}
		out[tid] = time.Duration(ns)
	}
	return out, nil
}

// cpuDelta is the CPU time the threads alive at after used since before,
// in total and in the vCPU threads. A thread that exited in between is
// missed (QEMU's idle I/O pool threads exit after some seconds).
func cpuDelta(before, after threadCPU, vcpus []int) cpuTimes {
	var c cpuTimes
	for tid, t := range after {
		d := t - before[tid]
		c.total += d
		if slices.Contains(vcpus, tid) {
			c.vcpu += d
		}
	}
	return c
}
