// Command snapshot measures snapshot creation and restore, Vireo beside
// QEMU 7.2, on the same guest (the project's kernel and busybox
// initramfs, 256 MiB, 1 vCPU) in one run, the VMMs alternating.
//
// Creation: Vireo's `vireo snapshot create --qmp` from exec to exit, and
// its QMP command (x-vireo-snapshot-create) alone over a connected
// session; QEMU's `stop`, `migrate "exec:cat > FILE"` and query-migrate
// until "completed" (QEMU's way of saving a VM to a file), with its own
// total-time.
//
// Restore to running: each restore is a fresh process. Vireo runs
// `vireo run --restore DIR --log-level debug`, whose "vCPUs running" log
// line marks the moment its restored vCPUs are let into KVM_RUN (it also
// reports how long loading the state and building the machine took);
// QEMU runs with `-incoming "exec:cat FILE"` and its RESUME event marks
// the same moment. Both are also timed to the guest's first console byte:
// the snapshots are taken while the guest prints to its serial console
// in a loop, so the restored guest prints as soon as it runs.
//
// Usage (from the repository root):
//
//	go run ./bench/snapshot -vireo bin/vireo -out BENCHMARKS.md
//
// The results replace the section between <!-- snapshot:begin --> and
// <!-- snapshot:end --> of the -out file (appended when absent).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/vireo-vmm/vireo/internal/guestimg"
)

// ErrUsage reports bad flags.
var ErrUsage = errors.New("usage")

type options struct {
	vireo, qemu, kernel, initrd, cmdline, out string
	runs, memMiB                              int
	timeout                                   time.Duration
}

// results are every measurement of one run.
type results struct {
	vireoCLI, vireoQMP      []time.Duration // creation
	qemuSave, qemuTotal     []time.Duration
	vireoRun, vireoOut      []time.Duration // restore: exec to vCPUs running, to first output
	vireoLoad, vireoBuild   []time.Duration // Vireo's own breakdown
	vireoState              []time.Duration
	vireoSince              []time.Duration // "since_start" (from the Go program's start)
	qemuRun, qemuOut        []time.Duration
	vireoBytes, qemuBytes   int64
	vireoFinal, qemuFinal   int64
	qemuVersion, vireoBuilt string
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench/snapshot:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("snapshot", flag.ContinueOnError)
	fs.StringVar(&o.vireo, "vireo", "", "the vireo binary (default: built from ./cmd/vireo)")
	fs.StringVar(&o.qemu, "qemu", "qemu-system-x86_64", "the QEMU binary")
	fs.StringVar(&o.kernel, "kernel", "", "guest kernel (default: the project's guest vmlinux)")
	fs.StringVar(&o.initrd, "initrd", "", "guest initramfs (default: the project's busybox initramfs)")
	fs.StringVar(&o.out, "out", "", "file whose snapshot section is rewritten (default: print only)")
	fs.IntVar(&o.runs, "runs", 7, "measurements per VMM and quantity")
	fs.IntVar(&o.memMiB, "memory", 256, "guest memory in MiB")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "limit for one boot")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if o.runs < 1 || o.memMiB < 16 || fs.NArg() != 0 {
		return nil, fmt.Errorf("%w: -runs %d, -memory %d, %d stray arguments", ErrUsage, o.runs, o.memMiB, fs.NArg())
	}
	return o, nil
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "snapbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := o.resolve(dir); err != nil {
		return err
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	res := &results{qemuVersion: firstLine(o.qemu, "--version"), vireoBuilt: firstLine(o.vireo, "version")}

	// Boot both sources at once: the boot is not measured.
	fmt.Fprintln(os.Stderr, "booting Vireo and QEMU...")
	vsrc, err := startProc("vireo", append(o.vireoBoot(), "--qmp", "unix:"+p("v.qmp")))
	if err != nil {
		return err
	}
	defer vsrc.kill()
	qsrc, err := startProc("qemu", append(o.qemuArgs(), "-qmp", "unix:"+p("q.qmp")+",server=on,wait=off"))
	if err != nil {
		return err
	}
	defer qsrc.kill()
	for _, s := range []*proc{vsrc, qsrc} {
		if err := s.waitOutput("~ # ", 0, o.timeout); err != nil {
			return err
		}
	}
	vq, err := dialQMP(p("v.qmp"), time.Minute)
	if err != nil {
		return err
	}
	defer vq.close()
	qq, err := dialQMP(p("q.qmp"), time.Minute)
	if err != nil {
		return err
	}
	defer qq.close()
	// Saving to a file is not live migration: no bandwidth limit
	// (QEMU's default is 32 MiB/s).
	if _, err := qq.call("migrate-set-parameters", map[string]any{"max-bandwidth": int64(100) << 30}); err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "snapshot creation...")
	// One untimed round warms the page cache and both VMMs' paths.
	for i := -1; i < o.runs; i++ {
		first, second := func() error { return vireoCreate(o, vq, p, i, res) }, func() error { return qemuCreate(qq, p, i, res) }
		if i%2 != 0 {
			first, second = second, first
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}

	// The final snapshots, taken while the guest prints in a loop.
	for _, s := range []*proc{vsrc, qsrc} {
		if err := s.send("while :; do echo -n T; done &\n"); err != nil {
			return err
		}
		if err := s.waitOutput("TTTT", s.outLen(), time.Minute); err != nil {
			return err
		}
	}
	if _, err := vq.call("x-vireo-snapshot-create", map[string]any{"dir": p("vfinal")}); err != nil {
		return err
	}
	// Migrated live (not stopped first), so that the restored VM runs
	// at once: QEMU restores a VM saved while stopped as stopped.
	if _, _, err := qemuSave(qq, p("qfinal"), false); err != nil {
		return err
	}
	res.vireoFinal, res.qemuFinal = allocated(p("vfinal")), allocated(p("qfinal"))
	vsrc.kill()
	qsrc.kill()

	fmt.Fprintln(os.Stderr, "restore...")
	for i := -1; i < o.runs; i++ {
		first, second := func() error { return vireoRestore(o, p, i, res) }, func() error { return qemuRestore(o, p, i, res) }
		if i%2 != 0 {
			first, second = second, first
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	section := report(o, res, time.Now())
	fmt.Print(section)
	if o.out != "" {
		return writeSection(o.out, section)
	}
	return nil
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
	o.cmdline = guestimg.DefaultCmdline()
	if o.vireo == "" {
		o.vireo = filepath.Join(dir, "vireo")
		cmd := exec.Command("go", "build", "-o", o.vireo, "./cmd/vireo")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building vireo: %v\n%s", err, out)
		}
	}
	if o.qemu, err = exec.LookPath(o.qemu); err != nil {
		return fmt.Errorf("QEMU: %w", err)
	}
	return nil
}

func (o *options) vireoBoot() []string {
	return []string{o.vireo, "run", "--kernel", o.kernel, "--initrd", o.initrd, "--cmdline", o.cmdline,
		"--memory", strconv.Itoa(o.memMiB) + "M", "--cpus", "1", "--no-reboot"}
}

// qemuArgs is QEMU's command line for the guest; a restore adds -incoming.
func (o *options) qemuArgs() []string {
	return []string{o.qemu, "-M", "microvm", "-enable-kvm", "-cpu", "qemu64,+xsaveerptr,+tsc-deadline",
		"-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
		"-m", strconv.Itoa(o.memMiB) + "M", "-smp", "1", "-kernel", o.kernel, "-initrd", o.initrd, "-append", o.cmdline, "-no-reboot"}
}

// vireoCreate takes one snapshot with the CLI and one through QMP.
func vireoCreate(o *options, vq *qmpConn, p func(string) string, i int, res *results) error {
	cli, qmpDir := p(fmt.Sprintf("vcli%d", i)), p(fmt.Sprintf("vqmp%d", i))
	start := time.Now()
	out, err := exec.Command(o.vireo, "snapshot", "create", "--qmp", "unix:"+p("v.qmp"), cli).CombinedOutput()
	cliTime := time.Since(start)
	if err != nil {
		return fmt.Errorf("vireo snapshot create: %v: %s", err, out)
	}
	start = time.Now()
	if _, err := vq.call("x-vireo-snapshot-create", map[string]any{"dir": qmpDir}); err != nil {
		return err
	}
	qmpTime := time.Since(start)
	size := allocated(qmpDir)
	os.RemoveAll(cli)
	os.RemoveAll(qmpDir)
	if i >= 0 {
		res.vireoCLI = append(res.vireoCLI, cliTime)
		res.vireoQMP = append(res.vireoQMP, qmpTime)
		res.vireoBytes = size
		fmt.Fprintf(os.Stderr, "  %d vireo  create: CLI %v, QMP %v\n", i+1, ms(cliTime), ms(qmpTime))
	}
	return nil
}

// qemuCreate saves QEMU's VM to a file and lets it run again.
func qemuCreate(qq *qmpConn, p func(string) string, i int, res *results) error {
	file := p(fmt.Sprintf("q%d", i))
	wall, total, err := qemuSave(qq, file, true)
	if err != nil {
		return err
	}
	if _, err := qq.call("cont", nil); err != nil {
		return err
	}
	size := allocated(file)
	os.Remove(file)
	if i >= 0 {
		res.qemuSave = append(res.qemuSave, wall)
		res.qemuTotal = append(res.qemuTotal, total)
		res.qemuBytes = size
		fmt.Fprintf(os.Stderr, "  %d qemu   create: stop+migrate %v (total-time %v)\n", i+1, ms(wall), ms(total))
	}
	return nil
}

// qemuSave migrates the VM into file, stopped first when stop is set,
// returning the wall time until query-migrate reports completion and
// QEMU's total-time.
func qemuSave(qq *qmpConn, file string, stop bool) (wall, total time.Duration, err error) {
	start := time.Now()
	if stop {
		if _, err := qq.call("stop", nil); err != nil {
			return 0, 0, err
		}
	}
	if _, err := qq.call("migrate", map[string]any{"uri": "exec:cat > " + file}); err != nil {
		return 0, 0, err
	}
	for {
		raw, err := qq.call("query-migrate", nil)
		if err != nil {
			return 0, 0, err
		}
		var st struct {
			Status    string `json:"status"`
			TotalTime int64  `json:"total-time"`
			Error     string `json:"error-desc"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return 0, 0, fmt.Errorf("query-migrate: %w", err)
		}
		switch st.Status {
		case "completed":
			return time.Since(start), time.Duration(st.TotalTime) * time.Millisecond, nil
		case "failed", "cancelled":
			return 0, 0, fmt.Errorf("QEMU migration %s: %s", st.Status, st.Error)
		}
		time.Sleep(time.Millisecond)
	}
}

var (
	durationField = regexp.MustCompile(`\b(took|build|since_start)=(\S+)`)
	atField       = regexp.MustCompile(`\bat_unix_us=(\d+)`)
)

// logDurations reads key=duration fields of a Vireo log line.
func logDurations(line string) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, m := range durationField.FindAllStringSubmatch(line, -1) {
		if d, err := time.ParseDuration(m[2]); err == nil {
			out[m[1]] = d
		}
	}
	return out
}

// vireoRestore restores the final snapshot in a fresh process.
func vireoRestore(o *options, p func(string) string, i int, res *results) error {
	v, err := startProc("vireo restore", []string{o.vireo, "run", "--restore", p("vfinal"), "--no-reboot", "--log-level", "debug"})
	if err != nil {
		return err
	}
	defer v.kill()
	first, err := v.firstOutput(time.Minute)
	if err != nil {
		return err
	}
	running, err := v.stderrLine("vCPUs running", 10*time.Second)
	if err != nil {
		return err
	}
	loaded, err := v.stderrLine("snapshot loaded", 10*time.Second)
	if err != nil {
		return err
	}
	restored, err := v.stderrLine("machine state restored", 10*time.Second)
	if err != nil {
		return err
	}
	r, l, st := logDurations(running.text), logDurations(loaded.text), logDurations(restored.text)
	toRun := running.at.Sub(v.started) // when the line came, if it has no timestamp
	if m := atField.FindStringSubmatch(running.text); m != nil {
		if us, err := strconv.ParseInt(m[1], 10, 64); err == nil {
			toRun = time.UnixMicro(us).Sub(v.started.Round(0))
		}
	}
	if i >= 0 {
		res.vireoRun = append(res.vireoRun, toRun)
		res.vireoOut = append(res.vireoOut, first)
		res.vireoLoad = append(res.vireoLoad, l["took"])
		res.vireoBuild = append(res.vireoBuild, r["build"]-st["took"])
		res.vireoState = append(res.vireoState, st["took"])
		res.vireoSince = append(res.vireoSince, r["since_start"])
		fmt.Fprintf(os.Stderr, "  %d vireo  restore: running %v, first output %v (load %v, build %v, of which component state %v)\n", i+1, ms(toRun), ms(first), ms(l["took"]), ms(r["build"]), ms(st["took"]))
	}
	return nil
}

// qemuRestore restores QEMU's final snapshot in a fresh process.
func qemuRestore(o *options, p func(string) string, i int, res *results) error {
	sock := p(fmt.Sprintf("qr%d.qmp", i))
	q, err := startProc("qemu restore", append(o.qemuArgs(), "-qmp", "unix:"+sock+",server=on,wait=off", "-incoming", "exec:cat "+p("qfinal")))
	if err != nil {
		return err
	}
	defer q.kill()
	// Connect at once, to see the RESUME event of the incoming VM.
	qc, err := dialQMP(sock, 10*time.Second)
	if err != nil {
		return err
	}
	defer qc.close()
	first, err := q.firstOutput(time.Minute)
	if err != nil {
		return err
	}
	var toRun time.Duration
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ev, ok := qc.event("RESUME"); ok {
			toRun = ev.Stamp.Sub(q.started)
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("QEMU restore: no RESUME event")
		}
		time.Sleep(time.Millisecond)
	}
	if i >= 0 {
		res.qemuRun = append(res.qemuRun, toRun)
		res.qemuOut = append(res.qemuOut, first)
		fmt.Fprintf(os.Stderr, "  %d qemu   restore: running %v, first output %v\n", i+1, ms(toRun), ms(first))
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// blocks is the disk space a file takes.
func blocks(path string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	return st.Blocks * 512
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown"
	}
	for i, c := range out {
		if c == '\n' {
			return string(out[:i])
		}
	}
	return string(out)
}
