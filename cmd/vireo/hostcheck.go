package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/hostmem"
	"github.com/vireo-vmm/vireo/internal/kvm"
)

// cmdHostCheck reports what this host offers Vireo, in the spirit of
// virt-host-validate: one line per check with PASS, WARN or FAIL. It fails
// (exit 1) only when KVM itself is unusable.
func cmdHostCheck(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("vireo host-check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(out, "usage: vireo host-check\n\nReports what /dev/kvm and the host kernel offer Vireo.")
			return errHelp
		}
		return usageError{err.Error()}
	}
	line := func(what, verdict, detail string) {
		if detail != "" {
			detail = " (" + detail + ")"
		}
		fmt.Fprintf(out, "%-44s : %s%s\n", what, verdict, detail)
	}
	sys, err := kvm.Open()
	if err != nil {
		line("KVM: /dev/kvm usable", "FAIL", err.Error())
		return err
	}
	defer sys.Close()
	v, _ := sys.APIVersion()
	line("KVM: /dev/kvm usable", "PASS", fmt.Sprintf("API version %d", v))

	caps := []struct {
		cap      int
		name     string
		required bool
	}{
		{kvm.CapIRQChip, "in-kernel irqchip (IRQCHIP)", true},
		{kvm.CapPIT2, "in-kernel PIT (PIT2)", true},
		{kvm.CapIRQFD, "irqfd", true},
		{kvm.CapIOEventFD, "ioeventfd", true},
		{kvm.CapImmediateExit, "immediate exit", true},
		{kvm.CapUserMemory, "user memory regions", true},
		{kvm.CapExtCPUID, "extended CPUID", true},
		{kvm.CapSplitIRQChip, "split irqchip", false},
		{kvm.CapX2APICAPI, "x2APIC API", false},
		{kvm.CapTSCDeadlineTimer, "TSC deadline timer", false},
		{kvm.CapTSCControl, "TSC frequency control", false},
		{kvm.CapKVMClockCtrl, "kvmclock pause notification", false},
		{kvm.CapAdjustClock, "KVM clock adjust", false},
		{kvm.CapXSave, "XSAVE state", false},
		{kvm.CapXCRs, "XCR state", false},
		{kvm.CapVCPUEvents, "vCPU events", false},
		{kvm.CapDebugRegs, "debug registers", false},
		{kvm.CapSignalMSI, "MSI injection", false},
		{kvm.CapIRQRouting, "GSI routing", false},
		{kvm.CapManualDirtyLogProtect2, "dirty logging (manual protect)", false},
		{kvm.CapDirtyLogRing, "dirty ring", false},
		{kvm.CapSyncRegs, "sync regs", false},
		{kvm.CapCoalescedMMIO, "coalesced MMIO", false},
		{kvm.CapBinaryStatsFD, "binary statistics", false},
		{kvm.CapX86UserSpaceMSR, "user-space MSR exits", false},
		{kvm.CapGuestMemfd, "guest_memfd", false},
	}
	for _, c := range caps {
		n := sys.CheckExtension(c.cap)
		switch {
		case n != 0:
			detail := ""
			if n > 1 {
				detail = fmt.Sprintf("%d", n)
			}
			line("KVM: "+c.name, "PASS", detail)
		case c.required:
			line("KVM: "+c.name, "FAIL", "required")
		default:
			line("KVM: "+c.name, "WARN", "not available")
		}
	}
	line("KVM: max vCPUs", "INFO", fmt.Sprintf("%d (recommended %d)", sys.CheckExtension(kvm.CapMaxVCPUs), sys.CheckExtension(kvm.CapNRVCPUs)))
	line("KVM: memory slots", "INFO", fmt.Sprintf("%d", sys.CheckExtension(kvm.CapNRMemSlots)))

	if cpuid, err := sys.SupportedCPUID(); err == nil {
		for _, f := range []struct {
			name         string
			fn, reg, bit uint32
		}{
			{"CPUID: x2apic", 1, 2, 21},
			{"CPUID: tsc-deadline", 1, 2, 24},
			{"CPUID: KVM paravirtual clock (kvmclock)", 0x40000001, 0, 3},
		} {
			verdict := "WARN"
			for _, e := range cpuid {
				if e.Function == f.fn {
					r := [4]uint32{e.Eax, e.Ebx, e.Ecx, e.Edx}[f.reg]
					if r&(1<<f.bit) != 0 {
						verdict = "PASS"
					}
					break
				}
			}
			line(f.name, verdict, "")
		}
	}
	line("CPU templates", "INFO", strings.Join(x86.TemplateNames(), ", "))

	memoryChecks(line, hostmem.ReadKSM(hostmem.KSMDir), hostmem.ReadHugePages(hostmem.THPDir)) // hostcheck_memory.go
	for _, d := range []string{"/dev/vhost-net", "/dev/vhost-vsock"} {
		if _, err := os.Stat(d); err == nil {
			line("Devices: "+d, "PASS", "")
		} else {
			line("Devices: "+d, "WARN", "absent; Vireo uses its user-space backend")
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err == nil {
		line("Devices: /dev/net/tun", "PASS", "")
	} else {
		line("Devices: /dev/net/tun", "WARN", "absent: no TAP networking")
	}
	return nil
}
