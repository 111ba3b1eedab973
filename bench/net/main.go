// Command net benchmarks Vireo's virtio-net beside QEMU's (user-space TAP
// backend, no vhost): TCP throughput guest to host and host to guest, ping
// round trip, and the VMM's CPU seconds per GiB moved. Both VMMs boot the
// same kernel and initramfs in one run, alternately, each on a TAP in a
// network namespace the program creates and removes; the results replace
// the net section of BENCHMARKS.md.
//
//	go run ./bench/net [-vireo bin/vireo] [-n 3] [-bytes 16M] [-out BENCHMARKS.md]
//
// It needs root (namespaces and TAPs), gcc with a static C library (the
// guest's traffic program), busybox on the host (ping) and QEMU.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/net/netguest"
	"github.com/vireo-vmm/vireo/internal/guestimg"
)

// options are the command-line flags.
type options struct {
	vireo, qemu, kernel, cmdline, out string
	initrd                            string // built
	n, pings, memMiB                  int
	bytes                             int64
	timeout                           time.Duration
	args                              []string
}

// subject is one VMM under test.
type subject struct {
	name string
	argv func(o *options) []string
}

var subjects = []subject{
	{"Vireo", func(o *options) []string {
		return []string{o.vireo, "run", "--kernel", o.kernel, "--initrd", o.initrd, "--cmdline", o.cmdline,
			"--memory", strconv.Itoa(o.memMiB) + "M", "--cpus", "1", "--no-reboot", "--net", "tap=" + tapName}
	}},
	{"QEMU", func(o *options) []string {
		// acpi=off: the guest kernel has no ACPI, and only then does
		// microvm add its virtio-mmio devices to the command line.
		return []string{o.qemu, "-M", "microvm,acpi=off", "-enable-kvm", "-cpu", "qemu64,+xsaveerptr,+tsc-deadline",
			"-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
			"-m", strconv.Itoa(o.memMiB) + "M", "-smp", "1", "-kernel", o.kernel, "-initrd", o.initrd,
			"-append", o.cmdline, "-no-reboot",
			"-netdev", "tap,id=n0,ifname=" + tapName + ",script=no,downscript=no,vhost=off",
			"-device", "virtio-net-device,netdev=n0"}
	}},
}

func main() {
	o := &options{args: os.Args[1:]}
	var size string
	flag.StringVar(&o.vireo, "vireo", "", "vireo binary (default: built from ./cmd/vireo)")
	flag.StringVar(&o.qemu, "qemu", "qemu-system-x86_64", "QEMU binary (empty: measure Vireo alone)")
	flag.StringVar(&o.kernel, "kernel", "", "guest kernel (default: the project's guest vmlinux)")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "file whose net section is replaced (empty: print only)")
	flag.IntVar(&o.n, "n", 3, "boots per VMM")
	flag.IntVar(&o.pings, "pings", 20, "pings per boot")
	flag.IntVar(&o.memMiB, "memory", 256, "guest MiB")
	flag.StringVar(&size, "bytes", "16M", "bytes per transfer (K, M, G suffixes)")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "limit for a boot or a transfer")
	flag.Parse()
	var err error
	if o.bytes, err = parseSize(size); err != nil {
		fatal(err)
	}
	if err := run(o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/net:", err)
	os.Exit(1)
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("-bytes %q: want a positive size", s)
	}
	return n * mult, nil
}

func run(o *options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates a network namespace and TAPs")
	}
	dir, err := os.MkdirTemp("", "vireo-bench-net-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := prepare(o, dir); err != nil {
		return err
	}
	ns, err := newNetns()
	if err != nil {
		return err
	}
	defer ns.remove()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		ns.remove()
		os.RemoveAll(dir)
		os.Exit(1)
	}()

	subs := subjects
	if o.qemu == "" {
		subs = subjects[:1]
	}
	res := map[string][]sample{}
	for i := range o.n {
		for k := range subs {
			s := subs[(i+k)%len(subs)] // who goes first alternates
			fmt.Fprintf(os.Stderr, "boot %d/%d: %s...\n", i+1, o.n, s.name)
			r, err := measure(ns, s, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "  guest→host %.3f MB/s, host→guest %.3f MB/s, ping %.2f ms, %.1f CPU s/GiB\n", r.G2H, r.H2G, r.RTT, r.CPUPerGiB)
			res[s.name] = append(res[s.name], r)
		}
	}
	section := render(o, res, time.Now())
	if o.out == "" {
		fmt.Print(section)
		return nil
	}
	return replaceSection(o.out, section)
}

// prepare builds what the run needs: vireo (unless given), vnetperf and
// the guest's initramfs, and finds the kernel and command line.
func prepare(o *options, dir string) error {
	if o.vireo == "" {
		o.vireo = filepath.Join(dir, "vireo")
		if out, err := exec.Command("go", "build", "-o", o.vireo, "./cmd/vireo").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/vireo: %v\n%s", err, out)
		}
	}
	if o.kernel == "" {
		k, err := guestimg.DefaultKernel()
		if err != nil {
			return err
		}
		o.kernel = k
	}
	o.cmdline = guestimg.DefaultCmdline()
	bin, err := netguest.Build(dir)
	if err != nil {
		return err
	}
	o.initrd = filepath.Join(dir, "initrd.cpio")
	script := "#!/bin/sh\nip addr add " + guestIP + "/24 dev eth0 && ip link set eth0 up && echo NET-UP\n"
	return netguest.Initramfs(o.initrd, bin, map[string][]byte{"/etc/vireo-init.d/10-net": []byte(script)})
}
