// Command control measures Vireo's control plane beside QEMU's and beside
// Vireo's own command line, in one run:
//
//	qmp    QMP query-status round trips on a running VM, Vireo and QEMU
//	       booted from the same kernel and initramfs and idle at the
//	       guest's shell; blocks of round trips alternate between the two
//	       VMMs, over one plain JSON client used for both.
//	start  Firecracker-API start: `vireo run --api-sock` configured with
//	       PUT /machine-config and /boot-source, timed from the
//	       PUT /actions InstanceStart request to the guest's first
//	       user-space marker on the serial console, alternating with
//	       `vireo run --kernel ... --initrd ...` timed from exec to the
//	       same marker.
//
// Usage (from the repository root):
//
//	go run ./bench/control -vireo bin/vireo -out BENCHMARKS.md
//
// The results replace the section between <!-- control:begin --> and
// <!-- control:end --> of the -out file (appended when absent).
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
const sectionName = "control"

// options are the command-line flags.
type options struct {
	vireo, qemu             string
	kernel, initrd, cmdline string
	out                     string
	memMiB                  int
	n, block, warmup        int // QMP round trips per VMM, per block, untimed
	runs                    int // starts per way
	qmp, start              bool
	timeout                 time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	benches := "qmp,start"
	fs := flag.NewFlagSet("control", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.vireo, "vireo", "", "the vireo binary (default: built from ./cmd/vireo)")
	fs.StringVar(&o.qemu, "qemu", "qemu-system-x86_64", "the QEMU binary")
	fs.StringVar(&o.kernel, "kernel", "", "guest kernel (default: the project's guest vmlinux)")
	fs.StringVar(&o.initrd, "initrd", "", "initramfs whose init prints "+harness.BootMarker+" (default: the project's busybox initramfs)")
	fs.StringVar(&o.cmdline, "cmdline", "", "kernel command line (default: the project's guest command line)")
	fs.StringVar(&o.out, "out", "", "file whose control section is rewritten (default: print only)")
	fs.IntVar(&o.memMiB, "memory", 128, "guest memory in MiB")
	fs.IntVar(&o.n, "n", 2000, "timed QMP query-status round trips per VMM")
	fs.IntVar(&o.block, "block", 100, "QMP round trips in one block before switching VMM")
	fs.IntVar(&o.warmup, "warmup", 200, "untimed QMP round trips per VMM first")
	fs.IntVar(&o.runs, "runs", 5, "starts through the API and through the command line, each")
	fs.StringVar(&benches, "bench", benches, "what to run: qmp, start or both (comma-separated)")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "time limit of one boot")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %w", harness.ErrUsage, err)
	}
	for _, b := range strings.Split(benches, ",") {
		switch strings.TrimSpace(b) {
		case "qmp":
			o.qmp = true
		case "start":
			o.start = true
		default:
			return nil, fmt.Errorf("%w: unknown benchmark %q (want qmp or start)", harness.ErrUsage, b)
		}
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("%w: unexpected argument %q", harness.ErrUsage, fs.Arg(0))
	case o.n < 1 || o.block < 1 || o.warmup < 0:
		return nil, fmt.Errorf("%w: -n and -block must be at least 1, -warmup at least 0", harness.ErrUsage)
	case o.runs < 1:
		return nil, fmt.Errorf("%w: -runs must be at least 1", harness.ErrUsage)
	case o.memMiB < 16:
		return nil, fmt.Errorf("%w: -memory must be at least 16 (MiB)", harness.ErrUsage)
	case o.timeout <= 0:
		return nil, fmt.Errorf("%w: -timeout must be positive", harness.ErrUsage)
	}
	return o, nil
}

func main() { harness.Main("bench/control", parseFlags, run) }

// run prepares the guest and programs, runs the selected benchmarks and
// writes the report.
func run(ctx context.Context, o *options, args []string) error {
	if err := harness.RequireKVM(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vireo-control-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	if o.vireo == "" {
		if o.vireo, err = harness.BuildVireo(dir); err != nil {
			return err
		}
	} else if o.vireo, err = harness.FindProgram(o.vireo, "build it with `make build`"); err != nil {
		return err
	}
	g, err := harness.DefaultGuest(o.kernel, o.initrd, o.cmdline, o.memMiB, 1)
	if err != nil {
		return err
	}
	rep := &report{
		Command:   harness.ShellJoin(append([]string{"go", "run", "./bench/control"}, args...)),
		Host:      harness.ReadHost(),
		LoadStart: harness.LoadAverage(),
		Vireo:     harness.ProgramVersion(o.vireo, "version"),
		Guest:     g,
		Opts:      o,
	}
	if o.qmp {
		if o.qemu, err = harness.FindProgram(o.qemu, "install the qemu-system-x86 package (`make deps`)"); err != nil {
			return err
		}
		rep.QEMU = harness.ProgramVersion(o.qemu, "--version")
		if rep.QMP, err = benchQMP(ctx, o, g, dir, harness.Progress); err != nil {
			return err
		}
	}
	if o.start {
		if rep.Start, err = benchStart(ctx, o, g, dir, harness.Progress); err != nil {
			return err
		}
	}
	rep.When = time.Now().UTC()
	rep.LoadEnd = harness.LoadAverage()
	section := rep.markdown()
	fmt.Print(section)
	if o.out == "" {
		return nil
	}
	if err := harness.UpdateFile(o.out, sectionName, section); err != nil {
		return err
	}
	harness.Progress("bench/control: wrote %s", o.out)
	return nil
}
