package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/vireo-vmm/vireo/internal/vmm"
)

var errHelp = errors.New("help shown")

// runFlags are the flags of `vireo run`.
type runFlags struct {
	kernel, initrd, cmdline string
	cmdlineSet              bool
	cpus                    int
	memory                  memorySpec
	console                 string
	noReboot                bool
	cpuTemplate             string
	logLevel                string
	qmp                     qmpSpecs    // --qmp, repeatable (qmp.go)
	devices                 vmm.Devices // virtio devices (flags in dev_*.go)
	restore                 string      // --restore DIR
	incoming                string      // --incoming URI (migrate.go)
	metricsAddr             string      // --metrics HOST:PORT (metrics.go)
	// Firecracker compatibility (fcapi.go).
	apiSock, configFile, instanceID string
	set                             map[string]bool // flags given on the command line
}

// memorySpec is --memory: "SIZE" or "size=SIZE[,hugepages=off|thp|on|hugetlbfs][,merge=on|off]".
type memorySpec struct {
	bytes     uint64
	hugePages string
	merge     bool
}

func (m *memorySpec) String() string { return fmt.Sprintf("%dM", m.bytes>>20) }

func (m *memorySpec) Set(s string) error {
	if !strings.Contains(s, "=") {
		n, err := parseSize(s)
		if err != nil {
			return err
		}
		m.bytes = n
		return nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("expected key=value, got %q", kv)
		}
		switch k {
		case "size":
			n, err := parseSize(v)
			if err != nil {
				return err
			}
			m.bytes = n
		case "hugepages":
			switch v {
			case "off", "thp", "hugetlbfs":
				m.hugePages = v
			case "on":
				m.hugePages = "hugetlbfs"
			default:
				return fmt.Errorf("hugepages=%s: want off, thp, on or hugetlbfs", v)
			}
		case "merge":
			b, err := parseOnOff(v)
			if err != nil {
				return fmt.Errorf("merge=%s: %w", v, err)
			}
			m.merge = b
		default:
			return fmt.Errorf("unknown memory option %q (want size, hugepages, merge)", k)
		}
	}
	return nil
}

func parseOnOff(v string) (bool, error) {
	switch v {
	case "on", "yes", "true":
		return true, nil
	case "off", "no", "false":
		return false, nil
	}
	return false, errors.New("want on or off")
}

// parseSize parses a byte size: plain numbers are MiB (as in QEMU's -m),
// suffixes K, M, G, T (optionally followed by "iB" or "B") are binary.
func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "iB"), "B")
	if t == "" {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	mult := uint64(1 << 20)
	switch t[len(t)-1] {
	case 'k', 'K':
		mult, t = 1<<10, t[:len(t)-1]
	case 'm', 'M':
		mult, t = 1<<20, t[:len(t)-1]
	case 'g', 'G':
		mult, t = 1<<30, t[:len(t)-1]
	case 't', 'T':
		mult, t = 1<<40, t[:len(t)-1]
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	if n > (1<<63)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

func parseRunFlags(args []string, stdout io.Writer) (*runFlags, error) {
	f := &runFlags{cpus: 1, memory: memorySpec{bytes: 128 << 20}, console: "stdio", logLevel: "warn"}
	fs := flag.NewFlagSet("vireo run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.kernel, "kernel", "", "guest kernel: vmlinux (ELF, PVH) or bzImage (default: the project's guest kernel)")
	fs.StringVar(&f.initrd, "initrd", "", "initial RAM disk (default with the default kernel: a busybox initramfs built from the host's busybox-static)")
	fs.Func("cmdline", "kernel command line (default: the one that suits this host)", func(s string) error {
		f.cmdline, f.cmdlineSet = s, true
		return nil
	})
	fs.IntVar(&f.cpus, "cpus", 1, "number of vCPUs (1-254)")
	fs.Var(&f.memory, "memory", "guest RAM: SIZE or size=SIZE[,hugepages=off|thp|on][,merge=on|off] (plain numbers are MiB)")
	fs.StringVar(&f.console, "console", "stdio", "console: stdio, file:PATH or none on the serial port (ttyS0), or virtio: stdio on a virtio console (hvc0)")
	fs.BoolVar(&f.noReboot, "no-reboot", false, "exit (status 0) when the guest resets instead of rebooting it")
	fs.StringVar(&f.cpuTemplate, "cpu-template", "", "CPU template (see 'vireo host-check')")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	fs.StringVar(&f.restore, "restore", "", "restore the VM saved in this snapshot directory instead of booting")
	fs.StringVar(&f.incoming, "incoming", "", "receive the VM by live migration instead of booting: tcp:HOST:PORT, unix:PATH, or defer (wait for QMP migrate-incoming)")
	fs.Func("metrics", "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9100)", func(s string) error {
		if err := checkMetricsAddr(s); err != nil {
			return err
		}
		f.metricsAddr = s
		return nil
	})
	fs.Var(&f.qmp, "qmp", "serve QMP on unix:PATH[,server=on][,wait=on|off] or tcp:HOST:PORT[,...]; repeatable")
	for _, add := range deviceFlags {
		add(fs, &f.devices)
	}
	fs.StringVar(&f.apiSock, "api-sock", "", "serve Firecracker's REST API on this Unix socket; without --config-file the VM waits to be configured through it")
	fs.StringVar(&f.configFile, "config-file", "", "boot the VM described by this Firecracker JSON config file")
	fs.StringVar(&f.instanceID, "id", "", "instance ID reported by the Firecracker API (default \"anonymous-instance\")")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage: vireo run [flags]")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil, errHelp
		}
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, nil
}
