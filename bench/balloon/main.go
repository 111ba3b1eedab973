// Command balloon measures the virtio balloon, Vireo beside QEMU 7.2, on
// the same guest (the project's kernel and busybox initramfs, 1 vCPU) in
// one run, the VMMs alternating. Each round boots a guest whose kernel
// runs with init_on_free=1, so all of its free memory has been written
// and is resident on the host (as in a guest that has run for a while),
// then:
//
//   - inflates the balloon by -balloon MiB through QMP (`balloon`), timed
//     from the command to query-balloon reporting the new size, and reads
//     how much the VMM's RSS fell;
//   - deflates it again, timed the same way.
//
// Usage (from the repository root):
//
//	go run ./bench/balloon -out BENCHMARKS.md
//
// The results replace the section between <!-- balloon:begin --> and
// <!-- balloon:end --> of the -out file (appended when absent).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestimg"
)

// ErrUsage reports bad flags.
var ErrUsage = errors.New("usage")

type options struct {
	vireo, qemu, kernel, initrd, cmdline, out string
	runs, memMiB, balloonMiB                  int
	timeout                                   time.Duration
}

// sample is one round's measurements.
type sample struct {
	inflate, deflate time.Duration
	returned         uint64 // bytes the VMM's RSS fell by on inflating
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench/balloon:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("balloon", flag.ContinueOnError)
	fs.StringVar(&o.vireo, "vireo", "", "the vireo binary (default: built from ./cmd/vireo)")
	fs.StringVar(&o.qemu, "qemu", "qemu-system-x86_64", "the QEMU binary")
	fs.StringVar(&o.kernel, "kernel", "", "guest kernel (default: the project's guest vmlinux)")
	fs.StringVar(&o.initrd, "initrd", "", "guest initramfs (default: the project's busybox initramfs)")
	fs.StringVar(&o.out, "out", "", "file whose balloon section is rewritten (default: print only)")
	fs.IntVar(&o.runs, "runs", 3, "rounds per VMM")
	fs.IntVar(&o.memMiB, "memory", 64, "guest memory in MiB")
	fs.IntVar(&o.balloonMiB, "balloon", 16, "MiB to inflate the balloon by")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "limit for one boot, touch or balloon change")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if o.runs < 1 || o.memMiB < 32 || o.balloonMiB < 1 || o.balloonMiB > o.memMiB/2 || fs.NArg() != 0 {
		return nil, fmt.Errorf("%w: want -runs >= 1, -memory >= 32, 0 < -balloon <= -memory/2 and no arguments", ErrUsage)
	}
	return o, nil
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "balloonbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := o.resolve(dir); err != nil {
		return err
	}
	var vireo, qemu []sample
	for i := range o.runs {
		order := []string{"vireo", "qemu"}
		if i%2 == 1 {
			order = []string{"qemu", "vireo"}
		}
		for _, name := range order {
			fmt.Fprintf(os.Stderr, "round %d: %s...\n", i+1, name)
			s, err := o.round(name, filepath.Join(dir, fmt.Sprintf("%s%d.qmp", name, i)))
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "  inflate %v (RSS -%d MiB), deflate %v\n", s.inflate.Round(time.Millisecond), s.returned>>20, s.deflate.Round(time.Millisecond))
			if name == "vireo" {
				vireo = append(vireo, s)
			} else {
				qemu = append(qemu, s)
			}
		}
	}
	section := report(o, vireo, qemu, firstLine(o.qemu, "--version"), time.Now())
	fmt.Print(section)
	if o.out != "" {
		return writeSection(o.out, section)
	}
	return nil
}

// round boots one guest under the named VMM and measures it.
func (o *options) round(name, sock string) (sample, error) {
	args := append(o.vireoArgs(), "--qmp", "unix:"+sock+",server=on,wait=off")
	if name == "qemu" {
		args = append(o.qemuArgs(), "-qmp", "unix:"+sock+",server=on,wait=off")
	}
	v, err := boot(name, args, sock, o.timeout)
	if err != nil {
		return sample{}, err
	}
	defer v.kill()
	// The statistics and the console settle before the clock starts.
	if _, err := v.sh("true", o.timeout); err != nil {
		return sample{}, err
	}
	mem := uint64(o.memMiB) << 20
	var s sample
	before, err := v.rss()
	if err != nil {
		return s, err
	}
	if s.inflate, err = v.qmp.balloon(mem-uint64(o.balloonMiB)<<20, o.timeout); err != nil {
		return s, fmt.Errorf("%s: inflating: %w", name, err)
	}
	after, err := v.rss()
	if err != nil {
		return s, err
	}
	s.returned = before - min(before, after)
	if s.deflate, err = v.qmp.balloon(mem, o.timeout); err != nil {
		return s, fmt.Errorf("%s: deflating: %w", name, err)
	}
	return s, nil
}

// resolve fills in the default guest and builds vireo when not given.
func (o *options) resolve(dir string) error {
	var err error
	if o.kernel == "" {
		if o.kernel, err = guestimg.DefaultKernel(); err != nil {
			return err
		}
	}
	if o.initrd == "" {
		if o.initrd, err = guestimg.DefaultInitrd(); err != nil {
			return err
		}
	}
	o.cmdline = guestimg.DefaultCmdline() + " init_on_free=1"
	if o.vireo == "" {
		o.vireo = filepath.Join(dir, "vireo")
		if out, err := exec.Command("go", "build", "-o", o.vireo, "./cmd/vireo").CombinedOutput(); err != nil {
			return fmt.Errorf("building vireo: %v: %s", err, out)
		}
	}
	return nil
}

func (o *options) vireoArgs() []string {
	return []string{o.vireo, "run", "--kernel", o.kernel, "--initrd", o.initrd, "--cmdline", o.cmdline,
		"--memory", strconv.Itoa(o.memMiB) + "M", "--cpus", "1", "--no-reboot", "--balloon"}
}

// qemuArgs: microvm announces its virtio-mmio devices on the kernel
// command line, as Vireo does.
func (o *options) qemuArgs() []string {
	return []string{o.qemu, "-M", "microvm", "-enable-kvm", "-cpu", "qemu64,+xsaveerptr,+tsc-deadline",
		"-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
		"-m", strconv.Itoa(o.memMiB) + "M", "-smp", "1", "-kernel", o.kernel, "-initrd", o.initrd,
		"-append", o.cmdline, "-no-reboot", "-device", "virtio-balloon-device"}
}

// firstLine is the first line a command prints, or "".
func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}
