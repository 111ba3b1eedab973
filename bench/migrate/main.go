// Command migrate measures live migration, Vireo beside QEMU 7.2, on this
// machine's loopback: the downtime and the total time of migrating an
// idle guest and a busy one (a guest program that keeps writing a 32 MiB
// working set, see csrc/dirtier.c).
//
// Each VMM boots the same guest once; then the VM migrates back and forth
// between a running process and a fresh one started to receive it
// (`vireo run --incoming tcp:...`, `qemu-system-x86_64 ... -incoming
// tcp:...`), Vireo and QEMU alternating, several times per workload.
// Downtime is taken two ways: as each VMM reports it (query-migrate), and
// as the guest sees it, from the source's STOP event to the target's
// RESUME event (QMP timestamps, one host clock).
//
// Usage (from the repository root):
//
//	go run ./bench/migrate -vireo bin/vireo -out BENCHMARKS.md
//
// The results replace the section between <!-- migrate:begin --> and
// <!-- migrate:end --> of the -out file (appended when absent).
package main

import (
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestimg"
	"github.com/vireo-vmm/vireo/internal/initramfs"
)

// dirtierSource is the busy guest's program.
//
//go:embed csrc/dirtier.c
var dirtierSource []byte

// ErrUsage reports bad flags.
var ErrUsage = errors.New("usage")

type options struct {
	vireo, qemu, kernel, out string
	runs, memMiB             int
	busyMiB, busyRate        int
	downtime                 time.Duration
	timeout                  time.Duration
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench/migrate:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.StringVar(&o.vireo, "vireo", "", "the vireo binary (default: built from ./cmd/vireo)")
	fs.StringVar(&o.qemu, "qemu", "qemu-system-x86_64", "QEMU to compare with (\"\" to skip)")
	fs.StringVar(&o.kernel, "kernel", "", "guest kernel (default: the project's guest vmlinux)")
	fs.StringVar(&o.out, "out", "", "file whose migrate section is rewritten (default: print only)")
	fs.IntVar(&o.runs, "runs", 5, "migrations per VMM and workload")
	fs.IntVar(&o.memMiB, "memory", 128, "guest memory in MiB")
	fs.IntVar(&o.busyMiB, "busy-mib", 32, "the busy guest's working set in MiB")
	fs.IntVar(&o.busyRate, "busy-rate", 32, "the busy guest's dirtying rate in MiB/s")
	fs.DurationVar(&o.downtime, "downtime-limit", 50*time.Millisecond, "downtime limit given to both VMMs")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "limit for one boot")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if o.runs < 1 || o.memMiB < 64 || o.busyMiB < 1 || o.busyMiB*2 > o.memMiB || o.busyRate < 1 {
		return nil, fmt.Errorf("%w: -runs %d, -memory %d, -busy-mib %d, -busy-rate %d", ErrUsage, o.runs, o.memMiB, o.busyMiB, o.busyRate)
	}
	return o, nil
}

// subject is one VMM: how to start a source and a target, its current
// VM, and its measurements per workload.
type subject struct {
	name   string
	argv   func(sock, incoming string) []string
	vm     *vm
	params map[string]any // migrate-set-parameters for each source
	res    map[string]*samples
}

// samples are one subject's measurements for one workload.
type samples struct {
	reported, observed, total []time.Duration
	mb                        []float64
	syncs                     []float64
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "migb")
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
			fmt.Fprintf(os.Stderr, "bench/migrate: %s not found; Vireo only\n", o.qemu)
			o.qemu = ""
		}
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := buildInitrd(dir, initrd); err != nil {
		return err
	}
	cmdline := guestimg.DefaultCmdline()
	mem := strconv.Itoa(o.memMiB) + "M"
	subjects := []*subject{{
		name: "Vireo",
		argv: func(sock, incoming string) []string {
			if incoming != "" {
				return []string{o.vireo, "run", "--incoming", incoming, "--no-reboot", "--qmp", "unix:" + sock}
			}
			return []string{o.vireo, "run", "--kernel", o.kernel, "--initrd", initrd, "--cmdline", cmdline,
				"--memory", mem, "--cpus", "1", "--no-reboot", "--qmp", "unix:" + sock}
		},
		params: map[string]any{"downtime-limit": o.downtime.Milliseconds()},
	}}
	if o.qemu != "" {
		subjects = append(subjects, &subject{
			name: "QEMU",
			argv: func(sock, incoming string) []string {
				// acpi=off: the guest kernel has no ACPI.
				a := []string{o.qemu, "-M", "microvm,acpi=off", "-enable-kvm", "-cpu", "qemu64,+xsaveerptr,+tsc-deadline",
					"-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
					"-m", mem, "-smp", "1", "-kernel", o.kernel, "-initrd", initrd, "-append", cmdline, "-no-reboot",
					"-qmp", "unix:" + sock + ",server=on,wait=off"}
				if incoming != "" {
					a = append(a, "-incoming", incoming)
				}
				return a
			},
			// The same downtime limit, and no bandwidth cap (Vireo has
			// none by default; QEMU's default is 128 MiB/s).
			params: map[string]any{"downtime-limit": o.downtime.Milliseconds(), "max-bandwidth": int64(1) << 40},
		})
	}
	defer func() {
		for _, s := range subjects {
			if s.vm != nil {
				s.vm.kill()
			}
		}
	}()
	// Boot one after the other (two emulated boots at once would crawl).
	for i, s := range subjects {
		s.res = map[string]*samples{"idle": {}, "busy": {}}
		fmt.Fprintf(os.Stderr, "booting %s...\n", s.name)
		sock := filepath.Join(dir, fmt.Sprintf("%d-boot.sock", i))
		if s.vm, err = startVM(s.name, s.argv(sock, ""), sock); err != nil {
			return err
		}
		if err := s.vm.waitFor("~ # ", 0, o.timeout); err != nil {
			return err
		}
	}
	seq := 0
	for _, workload := range []string{"idle", "busy"} {
		if workload == "busy" {
			for _, s := range subjects {
				mark := s.vm.mark()
				line := fmt.Sprintf("dirtier: %d MiB at %d MiB/s", o.busyMiB, o.busyRate)
				if err := s.vm.send(fmt.Sprintf("/bin/dirtier %d %d &\n", o.busyMiB, o.busyRate)); err != nil {
					return err
				}
				if err := s.vm.waitFor(line, mark, o.timeout); err != nil {
					return err
				}
			}
		}
		for r := range o.runs {
			order := slices.Clone(subjects)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, s := range order {
				seq++
				if err := migrateOnce(s, dir, seq, s.res[workload]); err != nil {
					return fmt.Errorf("%s, %s guest, run %d: %w", s.name, workload, r+1, err)
				}
				res := s.res[workload]
				fmt.Fprintf(os.Stderr, "%s %-5s run %d: downtime %v reported, %v STOP to RESUME; total %v; %.1f MB\n",
					workload, s.name, r+1, last(res.reported), last(res.observed), last(res.total), res.mb[len(res.mb)-1])
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

// migrateOnce moves s's VM to a fresh process and makes that the VM.
func migrateOnce(s *subject, dir string, seq int, res *samples) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	uri := fmt.Sprintf("tcp:127.0.0.1:%d", port)
	sock := filepath.Join(dir, fmt.Sprintf("%d.sock", seq))
	tgt, err := startVM(s.name+" target", s.argv(sock, uri), sock)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tgt.kill()
		}
	}()
	src := s.vm
	if _, err := src.qmp.call("migrate-set-parameters", s.params); err != nil {
		return err
	}
	srcMark, tgtMark := src.qmp.eventCount(), tgt.qmp.eventCount()
	if _, err := src.qmp.call("migrate", map[string]any{"uri": uri}); err != nil {
		return err
	}
	var info struct {
		Status    string `json:"status"`
		TotalTime int64  `json:"total-time"`
		Downtime  int64  `json:"downtime"`
		ErrorDesc string `json:"error-desc"`
		RAM       struct {
			Transferred    uint64 `json:"transferred"`
			DirtySyncCount uint64 `json:"dirty-sync-count"`
		} `json:"ram"`
	}
	for deadline := time.Now().Add(3 * time.Minute); ; {
		m, err := src.qmp.call("query-migrate", nil)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(m)
		json.Unmarshal(b, &info)
		if info.Status == "completed" {
			break
		}
		if info.Status == "failed" || info.Status == "cancelled" {
			return fmt.Errorf("migration %s: %s", info.Status, info.ErrorDesc)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("migration still %s after 3 minutes", info.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop, err := src.qmp.waitEvent("STOP", srcMark, 10*time.Second)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	resume, err := tgt.qmp.waitEvent("RESUME", tgtMark, 30*time.Second)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	res.reported = append(res.reported, time.Duration(info.Downtime)*time.Millisecond)
	res.observed = append(res.observed, resume.Time.Sub(stop.Time))
	res.total = append(res.total, time.Duration(info.TotalTime)*time.Millisecond)
	res.mb = append(res.mb, float64(info.RAM.Transferred)/1e6)
	res.syncs = append(res.syncs, float64(info.RAM.DirtySyncCount))
	src.qmp.call("quit", nil)
	select {
	case <-src.done:
	case <-time.After(10 * time.Second):
		src.kill()
	}
	s.vm, ok = tgt, true
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// buildInitrd writes the default guest's initramfs with dirtier in it.
func buildInitrd(dir, path string) error {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return errors.New("gcc is needed to build the busy guest's program (Debian: gcc, libc6-dev)")
	}
	src := filepath.Join(dir, "dirtier.c")
	bin := filepath.Join(dir, "dirtier")
	if err := os.WriteFile(src, dirtierSource, 0o644); err != nil {
		return err
	}
	if out, err := exec.Command(gcc, "-static", "-O2", "-s", "-Wall", "-o", bin, src).CombinedOutput(); err != nil {
		return fmt.Errorf("gcc -static dirtier.c: %w\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := initramfs.Build(f, initramfs.Options{Extra: map[string][]byte{"/bin/dirtier": b}}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func last(v []time.Duration) time.Duration { return v[len(v)-1] }

func median[T int64 | float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
