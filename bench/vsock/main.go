// Command vsock measures Vireo's virtio-vsock (the Firecracker-compatible
// Unix-socket backend) between host and guest: throughput each way,
// one-byte round trips and connection set-up, with the guest tool
// vsockecho (internal/devices/virtio/vsock/vsocktest).
//
// QEMU 7.2 can only back virtio-vsock with the kernel's vhost-vsock,
// which needs /dev/vhost-vsock; hosts without it (the development host)
// get no like-for-like comparison. For context the same guest tool runs,
// alternating with Vireo in the same run, over QEMU's virtio-serial port
// (a chardev Unix socket): QEMU's user-space host-guest stream.
//
// Usage (from the repository root):
//
//	go run ./bench/vsock -vireo bin/vireo -out BENCHMARKS.md
//
// The results replace the section between <!-- vsock:begin --> and
// <!-- vsock:end --> of the -out file (appended when absent).
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/vsock/vsocktest"
	"github.com/vireo-vmm/vireo/internal/guestimg"
)

// ErrUsage reports bad flags.
var ErrUsage = errors.New("usage")

// Guest-side ports and paths.
const (
	bulkPort   = 5000
	serialPort = "/dev/vport0p1"
	readyVsock = "vsockecho: bulk on 5000"
	readyPort  = "vsockecho: portbulk on " + serialPort
	initScript = "#!/bin/sh\n/bin/vsockecho bulk 5000 &\n[ -c " + serialPort + " ] && /bin/vsockecho portbulk " + serialPort + " &\n"
)

type options struct {
	vireo, qemu, kernel, out string
	runs, rounds, memMiB     int
	size                     int
	timeout                  time.Duration
	loadStart                string
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench/vsock:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("vsock", flag.ContinueOnError)
	fs.StringVar(&o.vireo, "vireo", "", "the vireo binary (default: built from ./cmd/vireo)")
	fs.StringVar(&o.qemu, "qemu", "qemu-system-x86_64", "QEMU for the virtio-serial context numbers (\"\" to skip)")
	fs.StringVar(&o.kernel, "kernel", "", "guest kernel (default: the project's guest vmlinux)")
	fs.StringVar(&o.out, "out", "", "file whose vsock section is rewritten (default: print only)")
	fs.IntVar(&o.runs, "runs", 5, "measurements per VMM")
	fs.IntVar(&o.rounds, "rounds", 50, "one-byte round trips per measurement")
	fs.IntVar(&o.memMiB, "memory", 128, "guest memory in MiB")
	size := fs.String("size", "2M", "bytes per transfer (K and M suffixes)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "limit for one boot")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	n, err := parseSize(*size)
	if err != nil || o.runs < 1 || o.rounds < 1 {
		return nil, fmt.Errorf("%w: -size %q, -runs %d, -rounds %d", ErrUsage, *size, o.runs, o.rounds)
	}
	o.size = n
	return o, nil
}

func parseSize(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: size %q", ErrUsage, s)
	}
	return n * mult, nil
}

// subject is one VMM under test with the channel to its guest tool.
type subject struct {
	name  string
	vm    *vm
	ch    channel
	vsock string // the hybrid vsock socket (Vireo only)
	res   samples
}

// samples are one subject's measurements.
type samples struct {
	h2g, g2h []float64 // MB/s
	rtt      []time.Duration
	connect  []time.Duration
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vsb")
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
	if o.qemu != "" {
		if p, err := exec.LookPath(o.qemu); err == nil {
			o.qemu = p
		} else {
			fmt.Fprintf(os.Stderr, "bench/vsock: %s not found; no QEMU context numbers\n", o.qemu)
			o.qemu = ""
		}
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := vsocktest.Initrd(initrd, map[string][]byte{"/etc/vireo-init.d/50-vsockbench": []byte(initScript)}); err != nil {
		return err
	}
	cmdline := guestimg.DefaultCmdline()

	var subjects []*subject
	defer func() {
		for _, s := range subjects {
			s.vm.kill()
		}
	}()
	// Boot one after the other (two emulated boots at once would crawl),
	// then measure alternately while both idle in between.
	uds := filepath.Join(dir, "v.sock")
	fmt.Fprintln(os.Stderr, "booting Vireo...")
	v, err := startVM("vireo", []string{o.vireo, "run", "--kernel", o.kernel, "--initrd", initrd,
		"--cmdline", cmdline, "--memory", strconv.Itoa(o.memMiB) + "M", "--cpus", "1",
		"--vsock", "cid=3,uds=" + uds, "--no-reboot"})
	if err != nil {
		return err
	}
	subjects = append(subjects, &subject{name: "Vireo vsock", vm: v, ch: vsockChannel{uds, bulkPort}, vsock: uds})
	if err := v.waitFor(readyVsock, o.timeout); err != nil {
		return err
	}
	if o.qemu != "" {
		fmt.Fprintln(os.Stderr, "booting QEMU...")
		// acpi=off: the guest kernel has no ACPI, so microvm must list
		// its virtio-mmio devices on the kernel command line instead.
		qs := filepath.Join(dir, "q.sock")
		q, err := startVM("qemu", []string{o.qemu, "-M", "microvm,acpi=off", "-enable-kvm", "-cpu", "qemu64,+xsaveerptr,+tsc-deadline",
			"-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
			"-m", strconv.Itoa(o.memMiB) + "M", "-smp", "1", "-kernel", o.kernel, "-initrd", initrd, "-append", cmdline, "-no-reboot",
			"-chardev", "socket,id=bench,path=" + qs + ",server=on,wait=off",
			"-device", "virtio-serial-device", "-device", "virtserialport,chardev=bench,name=bench"})
		if err != nil {
			return err
		}
		s := &subject{name: "QEMU virtio-serial", vm: q}
		subjects = append(subjects, s)
		if err := q.waitFor(readyPort, o.timeout); err != nil {
			return err
		}
		c, err := net.Dial("unix", qs)
		if err != nil {
			return fmt.Errorf("qemu chardev: %w", err)
		}
		defer c.Close()
		s.ch = serialChannel{c}
	}

	o.loadStart = loadAvg()
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i*13 + 5)
	}
	// Warm up: page in the guest tool's buffers and the host paths.
	for _, s := range subjects {
		if _, err := hostToGuest(s.ch, 256<<10, buf); err != nil {
			return fmt.Errorf("%s: warm-up: %w", s.name, err)
		}
		if _, err := guestToHost(s.ch, 256<<10, buf); err != nil {
			return fmt.Errorf("%s: warm-up: %w", s.name, err)
		}
	}
	for r := range o.runs {
		order := slices.Clone(subjects)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, s := range order {
			if err := measure(s, o, buf); err != nil {
				return fmt.Errorf("%s: run %d: %w", s.name, r+1, err)
			}
			fmt.Fprintf(os.Stderr, "run %d %-20s host->guest %6.2f MB/s  guest->host %6.2f MB/s  rtt %v\n",
				r+1, s.name, last(s.res.h2g), last(s.res.g2h), median(s.res.rtt))
		}
	}
	section := report(o, subjects, time.Now())
	fmt.Print(section)
	if o.out != "" {
		return writeSection(o.out, section)
	}
	return nil
}

// measure takes one sample of everything from s.
func measure(s *subject, o *options, buf []byte) error {
	d, err := hostToGuest(s.ch, o.size, buf)
	if err != nil {
		return fmt.Errorf("host to guest: %w", err)
	}
	s.res.h2g = append(s.res.h2g, mbps(o.size, d))
	d, err = guestToHost(s.ch, o.size, buf)
	if err != nil {
		return fmt.Errorf("guest to host: %w", err)
	}
	s.res.g2h = append(s.res.g2h, mbps(o.size, d))
	rtt, err := roundTrips(s.ch, o.rounds)
	if err != nil {
		return fmt.Errorf("round trips: %w", err)
	}
	s.res.rtt = append(s.res.rtt, median(rtt))
	if s.vsock != "" {
		var conn []time.Duration
		for range 10 {
			c, d, err := vsockDial(s.vsock, bulkPort)
			if err != nil {
				return fmt.Errorf("connect: %w", err)
			}
			c.Close()
			conn = append(conn, d)
		}
		s.res.connect = append(s.res.connect, median(conn))
	}
	return nil
}

func mbps(n int, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

func last(v []float64) float64 { return v[len(v)-1] }

func median[T int64 | float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// hostLine describes the machine.
func hostLine() string {
	release := strings.TrimSpace(readFile("/proc/sys/kernel/osrelease"))
	model := "unknown CPU"
	for _, l := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			model = strings.TrimSpace(v)
			break
		}
	}
	kvm := ""
	if exists("/sys/module/kvm_pvm") {
		kvm = "; kvm_pvm: nested, software-assisted KVM (guest kernel code runs through KVM's instruction emulator)"
	}
	return fmt.Sprintf("Linux %s, %s, %d CPUs%s", release, model, runtime.NumCPU(), kvm)
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown"
	}
	l, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(l)
}
