// Command bench boots the same guests in Vireo and in QEMU, alternating
// the two in one run, and reports medians and Vireo/QEMU ratios for:
//
//	insn  process start to the first guest instruction (a tiny PVH guest
//	      that writes one byte to the serial port)
//	boot  process start to the guest's first user-space marker (the real
//	      guest kernel with the default initramfs)
//	mem   VMM memory overhead after that boot: resident memory minus the
//	      resident part of guest RAM
//
// Usage (from the repository root; `make bench` does this):
//
//	go run ./bench -vireo bin/vireo -out BENCHMARKS.md
//
// The results replace the section between <!-- boot:begin --> and
// <!-- boot:end --> in the -out file, which is created if missing.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/vireo-vmm/vireo/bench/internal/harness"
)

// sectionName names this program's section of BENCHMARKS.md.
const sectionName = "boot"

// options are the command-line flags.
type options struct {
	vireo, qemu             string
	kernel, initrd, cmdline string
	memMiB, cpus, n         int
	out                     string
	benches                 benchSet
	timeout, insnTimeout    time.Duration
	settle                  time.Duration
	warmup                  bool
}

// benchSet is which benchmarks run.
type benchSet struct{ insn, boot, mem bool }

func (b *benchSet) String() string {
	var s []string
	for _, x := range []struct {
		on   bool
		name string
	}{{b.insn, "insn"}, {b.boot, "boot"}, {b.mem, "mem"}} {
		if x.on {
			s = append(s, x.name)
		}
	}
	return strings.Join(s, ",")
}

func (b *benchSet) Set(v string) error {
	*b = benchSet{}
	for _, name := range strings.Split(v, ",") {
		switch strings.TrimSpace(name) {
		case "insn":
			b.insn = true
		case "boot":
			b.boot = true
		case "mem":
			b.mem = true
		case "all":
			*b = benchSet{true, true, true}
		default:
			return fmt.Errorf("unknown benchmark %q (want insn, boot, mem or all)", name)
		}
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{benches: benchSet{true, true, true}}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.vireo, "vireo", "bin/vireo", "vireo binary (make build)")
	fs.StringVar(&o.qemu, "qemu", "qemu-system-x86_64", "QEMU binary")
	fs.StringVar(&o.kernel, "kernel", "", "guest kernel, vmlinux with a PVH note (default: the project's guest kernel)")
	fs.StringVar(&o.initrd, "initrd", "", "initramfs whose init prints the boot marker (default: the default busybox initramfs)")
	fs.StringVar(&o.cmdline, "cmdline", "", "kernel command line for both VMMs (default: the project's guest command line)")
	fs.IntVar(&o.memMiB, "memory", 128, "guest memory in MiB")
	fs.IntVar(&o.cpus, "cpus", 1, "number of vCPUs")
	fs.IntVar(&o.n, "n", 5, "iterations per VMM and benchmark")
	fs.StringVar(&o.out, "out", "", "markdown file whose boot section is rewritten (default: print only)")
	fs.Var(&o.benches, "bench", "benchmarks to run: insn, boot, mem (comma-separated) or all")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "time limit of one Linux boot")
	fs.DurationVar(&o.insnTimeout, "insn-timeout", 30*time.Second, "time limit of one tiny-guest boot")
	fs.DurationVar(&o.settle, "settle", time.Second, "wait after the boot marker before reading memory use")
	fs.BoolVar(&o.warmup, "warmup", true, "boot the tiny guest once in each VMM first, untimed (warms the page cache)")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %w", harness.ErrUsage, err)
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("%w: unexpected argument %q", harness.ErrUsage, fs.Arg(0))
	case o.n < 1:
		return nil, fmt.Errorf("%w: -n must be at least 1", harness.ErrUsage)
	case o.memMiB < 16:
		return nil, fmt.Errorf("%w: -memory must be at least 16 (MiB)", harness.ErrUsage)
	case o.cpus < 1:
		return nil, fmt.Errorf("%w: -cpus must be at least 1", harness.ErrUsage)
	case o.benches == benchSet{}:
		return nil, fmt.Errorf("%w: -bench selects nothing", harness.ErrUsage)
	case o.timeout <= 0 || o.insnTimeout <= 0 || o.settle < 0:
		return nil, fmt.Errorf("%w: timeouts must be positive", harness.ErrUsage)
	}
	return o, nil
}

func main() { harness.Main("bench", parseFlags, run) }

// run checks the prerequisites, runs the benchmarks and writes the report.
func run(ctx context.Context, o *options, args []string) error {
	env, err := prepare(o)
	if err != nil {
		return err
	}
	defer os.RemoveAll(env.tmp)
	res, err := benchmark(ctx, o, env, harness.Progress)
	if err != nil {
		return err
	}
	rep := report{
		When:    time.Now().UTC(),
		Command: reproduceCommand(args),
		Host:    env.host,
		Guest:   env.guest,
		Tiny:    env.tiny,
		Opts:    o,
		Res:     res,
		Vireo:   env.vireo,
		QEMU:    env.qemu,
	}
	section := rep.markdown()
	fmt.Print(section)
	if o.out == "" {
		return nil
	}
	if err := harness.UpdateFileWith(o.out, sectionName, section, intro); err != nil {
		return err
	}
	harness.Progress("bench: wrote %s", o.out)
	return nil
}
