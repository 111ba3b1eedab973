// Command blk measures Vireo's virtio-blk beside QEMU's, in one run on the
// same guest: sequential read and write throughput (1 MiB O_DIRECT
// requests; the write ends with fdatasync, a FLUSH), 4 KiB random-read
// IOPS at queue depth 32 (32 reader threads: the guest kernel has no
// Linux AIO), and the VMM's CPU time per GiB moved. The guest tool is a small static C program (guest/blkbench.c)
// built with gcc; fio would drag some 40 MB of shared libraries (Ceph,
// GlusterFS, RDMA) into an initramfs that this host's emulated guest
// kernel must unpack and map.
//
// Both VMMs get a copy of the same raw image with the same cache mode
// (Vireo --disk cache=MODE, QEMU -drive cache=MODE on virtio-blk-device
// over virtio-mmio), the same kernel, initramfs, command line, memory and
// one vCPU. They boot one after the other, then each measurement runs on
// each VMM in turn, the order alternating between rounds. CPU time is
// read from /proc/PID/task/*/schedstat before and after each measurement:
// the whole process, and apart from the vCPU threads (found with QMP's
// query-cpus-fast), whose
// time on hosts with an emulating KVM includes the guest kernel's.
//
// Usage (from the repository root):
//
//	go run ./bench/blk -vireo bin/vireo -out BENCHMARKS.md
//
// The results replace the section between <!-- blk:begin --> and
// <!-- blk:end --> of the -out file (appended when absent).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vireo-vmm/vireo/bench/internal/harness"
	"github.com/vireo-vmm/vireo/internal/guestimg"
)

// ErrUsage reports bad flags.
var ErrUsage = errors.New("usage")

// ErrGuest reports a failed guest measurement.
var ErrGuest = errors.New("guest tool")

type options struct {
	vireo, qemu, kernel, out, cache string
	runs, mib, depth, memMiB        int
	imageMiB                        int
	seconds                         float64
	timeout                         time.Duration
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench/blk:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("blk", flag.ContinueOnError)
	fs.StringVar(&o.vireo, "vireo", "", "the vireo binary (default: built from ./cmd/vireo)")
	fs.StringVar(&o.qemu, "qemu", "qemu-system-x86_64", "the QEMU binary")
	fs.StringVar(&o.kernel, "kernel", "", "guest kernel (default: the project's guest)")
	fs.StringVar(&o.out, "out", "", "rewrite the blk section of this Markdown file")
	fs.StringVar(&o.cache, "cache", "writeback", "cache mode of both VMMs' disks: writeback or none")
	fs.IntVar(&o.runs, "runs", 3, "rounds of measurements")
	fs.IntVar(&o.mib, "mib", 16, "MiB per sequential measurement")
	fs.IntVar(&o.imageMiB, "image", 256, "disk image size in MiB")
	fs.Float64Var(&o.seconds, "seconds", 10, "duration of each random-read measurement")
	fs.IntVar(&o.depth, "depth", 32, "random-read queue depth")
	fs.IntVar(&o.memMiB, "memory", 256, "guest memory in MiB")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "limit for a boot or one measurement")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if o.runs < 1 || o.mib < 1 || o.imageMiB < o.mib || o.seconds <= 0 || o.depth < 1 || o.depth > 256 {
		return nil, fmt.Errorf("%w: -runs %d, -mib %d, -image %d, -seconds %v, -depth %d", ErrUsage, o.runs, o.mib, o.imageMiB, o.seconds, o.depth)
	}
	if o.cache != "writeback" && o.cache != "none" {
		return nil, fmt.Errorf("%w: -cache %q (want writeback or none)", ErrUsage, o.cache)
	}
	return o, nil
}

// test is one measurement, typed on the guest tool's console.
type test struct {
	name, unit string
	command    func(o *options) string
}

var tests = []test{
	{"sequential read", "MB/s", func(o *options) string { return fmt.Sprintf("seqread /dev/vda %d 1024", o.mib) }},
	{"sequential write", "MB/s", func(o *options) string { return fmt.Sprintf("seqwrite /dev/vda %d 1024", o.mib) }},
	{"4 KiB random read", "IOPS", func(o *options) string { return fmt.Sprintf("randread /dev/vda %g %d", o.seconds, o.depth) }},
}

// sample is one measurement's outcome.
type sample struct {
	rate    float64 // MB/s or IOPS
	bytes   int64
	seconds float64 // as the guest timed it
	cpu     cpuTimes
	kvm     map[string]uint64 // increases of KVM's vCPU statistics (kvmRows)
	ios     float64           // requests: 1 MiB ones, or the random reads
}

// kvmStatNames are the KVM statistics sampled around each measurement:
// those the report shows (kvmRows).
var kvmStatNames = func() []string {
	var names []string
	for _, r := range kvmRows {
		names = append(names, r.stat)
	}
	return names
}()

// subject is one VMM under test.
type subject struct {
	name  string
	vm    *vm
	qmp   *harness.QMP
	vcpus []int
	res   [][]sample // per test
	idle  []sample   // the guest tool sleeping: the VMM's background cost
}

var resultLine = regexp.MustCompile(`(?m)^(RESULT|ERROR) (\S+)([^\r\n]*)\r?\n`)

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "blkb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.kernel == "" {
		if o.kernel, err = guestimg.DefaultKernel(); err != nil {
			return err
		}
	}
	if o.vireo == "" {
		o.vireo = filepath.Join(dir, "vireo")
		if out, err := exec.Command("go", "build", "-o", o.vireo, "./cmd/vireo").CombinedOutput(); err != nil {
			return fmt.Errorf("building vireo: %v\n%s", err, out)
		}
	}
	if o.qemu, err = exec.LookPath(o.qemu); err != nil {
		return fmt.Errorf("QEMU: %w (Debian qemu-system-x86)", err)
	}
	initrd, err := buildInitrd(dir)
	if err != nil {
		return err
	}
	cmdline := guestimg.DefaultCmdline()
	imgs := [2]string{filepath.Join(dir, "vireo.img"), filepath.Join(dir, "qemu.img")}
	for _, p := range imgs {
		if err := makeImage(p, int64(o.imageMiB)<<20); err != nil {
			return fmt.Errorf("disk image: %w", err)
		}
	}
	mem := strconv.Itoa(o.memMiB) + "M"

	var subjects []*subject
	defer func() {
		for _, s := range subjects {
			s.vm.kill()
		}
	}()
	// Boot one after the other (two emulated boots at once would crawl).
	boot := func(name, sock string, argv []string) error {
		fmt.Fprintf(os.Stderr, "booting %s...\n", name)
		v, err := startVM(name, argv)
		if err != nil {
			return err
		}
		s := &subject{name: name, vm: v, res: make([][]sample, len(tests))}
		subjects = append(subjects, s)
		if _, err := v.waitLine(regexp.MustCompile(regexp.QuoteMeta(guestReady)), o.timeout); err != nil {
			return err
		}
		if s.qmp, err = harness.DialQMP(context.Background(), sock, 30*time.Second); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if s.vcpus, err = s.qmp.VCPUThreads(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	vsock := filepath.Join(dir, "v.qmp")
	err = boot("Vireo", vsock, []string{o.vireo, "run", "--kernel", o.kernel, "--initrd", initrd,
		"--cmdline", cmdline, "--memory", mem, "--cpus", "1", "--no-reboot",
		"--disk", "path=" + imgs[0] + ",cache=" + o.cache, "--qmp", "unix:" + vsock + ",server=on,wait=off"})
	if err != nil {
		return err
	}
	// acpi=off: the guest kernel has no ACPI, so microvm lists its
	// virtio-mmio devices on the kernel command line instead.
	qsock := filepath.Join(dir, "q.qmp")
	err = boot("QEMU", qsock, []string{o.qemu, "-M", "microvm,acpi=off", "-enable-kvm", "-cpu", "qemu64,+xsaveerptr,+tsc-deadline",
		"-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
		"-m", mem, "-smp", "1", "-kernel", o.kernel, "-initrd", initrd, "-append", cmdline, "-no-reboot",
		"-drive", "file=" + imgs[1] + ",if=none,id=d0,format=raw,cache=" + o.cache,
		"-device", "virtio-blk-device,drive=d0", "-qmp", "unix:" + qsock + ",server=on,wait=off"})
	if err != nil {
		return err
	}

	// Warm up both paths (and, with cache=writeback, the host page cache).
	for _, s := range subjects {
		if _, err := measure(s, fmt.Sprintf("seqread /dev/vda %d 1024", o.imageMiB), o.timeout); err != nil {
			return fmt.Errorf("%s: warm-up: %w", s.name, err)
		}
	}
	for r := range o.runs {
		order := slices.Clone(subjects)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, s := range order {
			sm, err := measure(s, fmt.Sprintf("idle - %g 0", o.seconds), o.timeout)
			if err != nil {
				return fmt.Errorf("%s: idle, round %d: %w", s.name, r+1, err)
			}
			s.idle = append(s.idle, sm)
			fmt.Fprintf(os.Stderr, "round %d %-5s idle  CPU %6.2f ms/s (%6.2f ms/s outside vCPUs)\n",
				r+1, s.name, perSecond(sm.cpu.total, sm.seconds), perSecond(sm.cpu.other(), sm.seconds))
		}
		for ti, t := range tests {
			for _, s := range order {
				sm, err := measure(s, t.command(o), o.timeout)
				if err != nil {
					return fmt.Errorf("%s: %s, round %d: %w", s.name, t.name, r+1, err)
				}
				s.res[ti] = append(s.res[ti], sm)
				fmt.Fprintf(os.Stderr, "round %d %-5s %-18s %9.1f %-4s  CPU %6.2f s/GiB (%6.2f s/GiB outside vCPUs)  per request: %s\n",
					r+1, s.name, t.name, sm.rate, t.unit, perGiB(sm.cpu.total, sm.bytes), perGiB(sm.cpu.other(), sm.bytes), perRequest(sm))
			}
		}
	}
	section := report(o, subjects, time.Now())
	fmt.Print(section)
	if o.out != "" {
		return writeSection(o.out, section)
	}
	return nil
}

// measure runs one guest command and samples the VMM's CPU time around
// it: from the console's echo of the command (typing it costs the VMMs
// some CPU time that is not disk work) to the result line.
func measure(s *subject, command string, timeout time.Duration) (sample, error) {
	if err := s.vm.send(command); err != nil {
		return sample{}, err
	}
	if _, err := s.vm.waitLine(regexp.MustCompile(regexp.QuoteMeta(command)+`\r?\n`), timeout); err != nil {
		return sample{}, err
	}
	// KVM's statistics are read just outside the CPU window, so that the
	// VMMs' QMP work is not counted as disk work.
	kvm0, err := s.qmp.KVMStats(kvmStatNames...)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", s.name, err)
	}
	before, err := readThreads(s.vm.pid())
	if err != nil {
		return sample{}, err
	}
	m, err := s.vm.waitLine(resultLine, timeout)
	if err != nil {
		return sample{}, err
	}
	after, err := readThreads(s.vm.pid())
	if err != nil {
		return sample{}, err
	}
	kvm1, err := s.qmp.KVMStats(kvmStatNames...)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", s.name, err)
	}
	if m[1] == "ERROR" {
		return sample{}, fmt.Errorf("%w: %s%s", ErrGuest, m[2], m[3])
	}
	kv := map[string]float64{}
	for _, f := range regexp.MustCompile(`(\w+)=([0-9.]+)`).FindAllStringSubmatch(m[3], -1) {
		kv[f[1]], _ = strconv.ParseFloat(f[2], 64)
	}
	secs, bytes := kv["seconds"], kv["bytes"]
	if secs <= 0 || (bytes <= 0 && m[2] != "idle") {
		return sample{}, fmt.Errorf("%w: result %q", ErrGuest, m[0])
	}
	sm := sample{bytes: int64(bytes), seconds: secs, cpu: cpuDelta(before, after, s.vcpus), kvm: map[string]uint64{}}
	for k, v := range kvm1 {
		sm.kvm[k] = v - kvm0[k]
	}
	if ios, ok := kv["ios"]; ok {
		sm.rate, sm.ios = ios/secs, ios
	} else {
		sm.rate, sm.ios = bytes/1e6/secs, bytes/(1<<20)
	}
	return sm, nil
}

// perSecond is CPU milliseconds per second of guest time.
func perSecond(d time.Duration, secs float64) float64 {
	return float64(d) / float64(time.Millisecond) / secs
}

// perGiB is CPU seconds per GiB moved.
func perGiB(d time.Duration, bytes int64) float64 {
	return d.Seconds() / (float64(bytes) / (1 << 30))
}

// perRequest prints KVM's statistics per request of a sample.
func perRequest(sm sample) string {
	var b strings.Builder
	for _, r := range kvmRows {
		fmt.Fprintf(&b, " %s=%.1f", r.stat, float64(sm.kvm[r.stat])/sm.ios)
	}
	return strings.TrimSpace(b.String())
}
