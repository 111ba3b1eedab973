package qmp

import (
	"fmt"
	"strings"
)

// hmpInfo lists the `info` subcommands, with QEMU's help lines.
var hmpInfo = []struct{ name, help string }{
	{"balloon", "show balloon information"},
	{"block", "show info of one block device or all block devices"},
	{"blockstats", "show block device statistics"},
	{"cpus", "show infos for each CPU"},
	{"kvm", "show KVM information"},
	{"memory_size_summary", "show the amount of initially allocated and present hotpluggable (if enabled) memory in bytes."},
	{"name", "show the current VM name"},
	{"stats", "show statistics for the given target (vm or vcpu); optionally filter by name (comma-separated list, or * for all) and provider"},
	{"status", "show the current VM status (running|paused)"},
	{"uuid", "show the current VM UUID"},
	{"version", "show the version of QEMU"},
	{"vireo-memory", "show how the host backs guest memory: resident, huge pages, KSM, balloon"},
}

// hmpCommands lists the other human monitor commands.
var hmpCommands = []struct{ name, help string }{
	{"cont|c", "resume emulation"},
	{"help|?", "show the help"},
	{"info", "show various information about the system state"},
	{"quit|q", "quit the emulator"},
	{"stop", "stop emulation"},
	{"system_powerdown", "send system power down event"},
	{"system_reset", "reset the system"},
}

// hmp runs one human monitor command line and returns its output, with
// QEMU's CRLF line ends. cpu, when given, selects the current vCPU.
func (s *Server) hmp(line string, cpu int64, hasCPU bool) (string, error) {
	current := 0
	if hasCPU {
		if !s.validCPU(cpu) {
			return "", genericf("Parameter 'cpu-index' expects a CPU number")
		}
		current = int(cpu)
	}
	words := strings.Fields(line)
	if len(words) == 0 {
		return "", nil
	}
	var b strings.Builder
	var err error
	switch words[0] {
	case "info":
		if len(words) == 1 {
			for _, c := range hmpInfo {
				fmt.Fprintf(&b, "info %s  -- %s\n", c.name, c.help)
			}
			break
		}
		if !s.hmpInfo(&b, words[1], words[2:], current) {
			return crlf(fmt.Sprintf("unknown command: 'info %s'\n", words[1])), nil
		}
	case "help", "?":
		for _, c := range hmpCommands {
			fmt.Fprintf(&b, "%s  -- %s\n", c.name, c.help)
		}
	case "stop":
		err = s.m.Pause()
	case "cont", "c":
		err = s.m.Resume()
	case "system_reset":
		err = s.m.Reset()
	case "system_powerdown":
		err = s.m.Powerdown()
	case "quit", "q":
		err = s.m.Quit()
	default:
		return crlf(fmt.Sprintf("unknown command: '%s'\n", words[0])), nil
	}
	if err != nil {
		// The human monitor prints errors; the QMP command succeeds.
		fmt.Fprintf(&b, "Error: %s\n", toError(err).Desc)
	}
	return crlf(b.String()), nil
}

// hmpInfo writes the output of `info what`; false means no such command.
func (s *Server) hmpInfo(b *strings.Builder, what string, rest []string, current int) bool {
	switch what {
	case "status":
		// QEMU prints "paused" for every state but running, and names
		// the state when it is not plain paused.
		switch st := s.m.Status(); st {
		case StateRunning, StatePaused:
			fmt.Fprintf(b, "VM status: %s\n", st)
		default:
			fmt.Fprintf(b, "VM status: paused (%s)\n", st)
		}
	case "cpus":
		for _, c := range s.m.CPUs() {
			mark := " "
			if c.Index == current {
				mark = "*"
			}
			fmt.Fprintf(b, "%s CPU #%d: thread_id=%d\n", mark, c.Index, c.ThreadID)
		}
	case "block":
		for _, d := range blockInfos(s.m.Blocks()) {
			ro := ""
			if d.Inserted.RO {
				ro = ", read-only"
			}
			fmt.Fprintf(b, "%s: %s (%s%s)\n", d.Device, d.Inserted.File, d.Inserted.Drv, ro)
			mode := "writeback"
			if c := d.Inserted.Cache; c.Direct {
				mode += ", direct"
			} else if c.NoFlush {
				mode += ", ignore flushes"
			}
			fmt.Fprintf(b, "    Cache mode:       %s\n", mode)
		}
	case "balloon":
		actual, err := s.m.Balloon()
		if err != nil {
			fmt.Fprintf(b, "Error: %s\n", toError(err).Desc)
			break
		}
		fmt.Fprintf(b, "balloon: actual=%d\n", actual>>20)
	case "version":
		v := s.version
		fmt.Fprintf(b, "%d.%d.%d%s\n", v.QEMU.Major, v.QEMU.Minor, v.QEMU.Micro, v.Package)
	case "name":
		if s.opts.Name != "" {
			fmt.Fprintf(b, "%s\n", s.opts.Name)
		}
	case "uuid":
		fmt.Fprintf(b, "%s\n", s.uuid())
	case "kvm":
		b.WriteString("kvm support: enabled\n")
	case "vireo-memory":
		s.hmpHostMemory(b)
	case "blockstats":
		s.hmpBlockstats(b)
	case "stats":
		s.hmpStats(b, rest, current)
	case "memory_size_summary":
		fmt.Fprintf(b, "base memory: %d\nplugged memory: 0\n", s.m.MemorySize())
	default:
		return false
	}
	return true
}

// validCPU reports whether i is the index of a vCPU.
func (s *Server) validCPU(i int64) bool {
	for _, c := range s.m.CPUs() {
		if int64(c.Index) == i {
			return true
		}
	}
	return false
}

// crlf converts line ends to the CRLF the human monitor prints.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
