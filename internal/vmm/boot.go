package vmm

import (
	"fmt"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/kvm"
	"github.com/vireo-vmm/vireo/internal/loader"
	"github.com/vireo-vmm/vireo/internal/vcpu"
)

// startVCPUs creates every vCPU paused, with CPUID, MSRs and, on the boot
// processor, the registers the kernel's entry protocol expects. Application
// processors stay in the wait-for-SIPI state that KVM gives them.
func (m *Machine) startVCPUs(proto loader.Protocol, entry, bootArg uint64) error {
	supported, err := m.sys.SupportedCPUID()
	if err != nil {
		return err
	}
	host := make([]x86.CPUIDEntry, len(supported))
	for i, e := range supported {
		host[i] = x86.CPUIDEntry{Function: e.Function, Index: e.Index, Flags: e.Flags, EAX: e.Eax, EBX: e.Ebx, ECX: e.Ecx, EDX: e.Edx}
	}
	tmpl, err := x86.TemplateByName(m.cfg.cpuTemplate())
	if err != nil {
		return err
	}
	var cr3 uint64
	if proto == loader.ProtocolLinux64 {
		if err := x86.WriteBootGDT(m.mem); err != nil {
			return err
		}
		if cr3, err = x86.WriteIdentityPageTables(m.mem); err != nil {
			return err
		}
	} else if err := x86.WritePVHGDT(m.mem); err != nil {
		return err
	}
	topo := x86.Topology{CPUs: m.cfg.CPUs}
	for i := 0; i < m.cfg.CPUs; i++ {
		id := i
		table, err := x86.BuildCPUID(host, id, topo, tmpl)
		if err != nil {
			return fmt.Errorf("CPUID for vCPU %d: %w", id, err)
		}
		setup := func(c *kvm.VCPU) error {
			if err := c.SetCPUID(toKVMCPUID(table)); err != nil {
				return err
			}
			if err := setBootMSRs(c); err != nil {
				return err
			}
			if err := setLINTs(c); err != nil {
				return err
			}
			if id != 0 {
				return nil
			}
			if err := c.SetFPU(kvm.FPU{Fcw: 0x37f, Mxcsr: 0x1f80}); err != nil {
				return err
			}
			return setBootRegs(c, proto, entry, bootArg, cr3)
		}
		if err := m.spawnVCPU(id, setup); err != nil {
			return err
		}
	}
	return nil
}

// spawnVCPU starts vCPU id, paused, with setup run on its thread.
func (m *Machine) spawnVCPU(id int, setup func(*kvm.VCPU) error) error {
	v, err := vcpu.Start(vcpu.Config{
		ID: id, VM: m.vm, PIO: &m.pio, MMIO: &m.mmio,
		Setup: setup, Events: m.events, Log: m.log, Mem: m.mem,
	}, true)
	if err != nil {
		return err
	}
	m.vcpus = append(m.vcpus, v)
	return nil
}

func toKVMCPUID(t []x86.CPUIDEntry) []kvm.CPUIDEntry2 {
	out := make([]kvm.CPUIDEntry2, len(t))
	for i, e := range t {
		out[i] = kvm.CPUIDEntry2{Function: e.Function, Index: e.Index, Flags: e.Flags, Eax: e.EAX, Ebx: e.EBX, Ecx: e.ECX, Edx: e.EDX}
	}
	return out
}

func setBootMSRs(c *kvm.VCPU) error {
	boot := x86.BootMSRs()
	entries := make([]kvm.MSREntry, len(boot))
	for i, e := range boot {
		entries[i] = kvm.MSREntry{Index: e.Index, Data: e.Data}
	}
	return c.SetMSRs(entries)
}

// Local APIC LVT registers and delivery modes.
const (
	apicLVT0       = 0x350
	apicLVT1       = 0x360
	apicModeNMI    = 0x4
	apicModeExtINT = 0x7
)

// setLINTs wires LINT0 to the PIC (ExtINT) and LINT1 to NMI, as a PC BIOS does.
func setLINTs(c *kvm.VCPU) error {
	l, err := c.LAPIC()
	if err != nil {
		return err
	}
	set := func(off int, mode uint32) {
		v := uint32(uint8(l.Regs[off])) | uint32(uint8(l.Regs[off+1]))<<8 | uint32(uint8(l.Regs[off+2]))<<16 | uint32(uint8(l.Regs[off+3]))<<24
		v = v&^0x700 | mode<<8
		for i := 0; i < 4; i++ {
			l.Regs[off+i] = int8(uint8(v >> (8 * i)))
		}
	}
	set(apicLVT0, apicModeExtINT)
	set(apicLVT1, apicModeNMI)
	return c.SetLAPIC(l)
}

func kvmSegment(s x86.Segment) kvm.Segment {
	return kvm.Segment{
		Base: s.Base, Limit: s.Limit, Selector: s.Selector, Type: s.Type,
		Present: s.Present, Dpl: s.DPL, Db: s.DB, S: s.S, L: s.L, G: s.G, Avl: s.AVL,
		Unusable: boolByte(s.Present == 0),
	}
}

// setBootRegs puts the boot processor at the kernel entry point.
func setBootRegs(c *kvm.VCPU, proto loader.Protocol, entry, bootArg, cr3 uint64) error {
	sregs, err := c.Sregs()
	if err != nil {
		return err
	}
	regs := kvm.Regs{Rflags: 2, Rip: entry}
	sregs.Gdt = kvm.DTable{Base: x86.GDTStart, Limit: x86.BootGDTLimit}
	sregs.Idt = kvm.DTable{Base: x86.IDTStart, Limit: x86.BootIDTLimit}
	var code, data, tss x86.Segment
	switch proto {
	case loader.ProtocolPVH:
		// 32-bit flat protected mode, paging off; EBX = hvm_start_info.
		code, data, tss = x86.PVHCodeSegment(), x86.PVHDataSegment(), x86.PVHTSSSegment()
		sregs.Cr0 = x86.PVHCR0
		sregs.Cr4 = 0
		sregs.Efer = 0
		regs.Rbx = bootArg
	case loader.ProtocolLinux64:
		// 64-bit long mode on identity page tables; RSI = boot_params.
		code, data, tss = x86.CodeSegment(), x86.DataSegment(), x86.TSSSegment()
		sregs.Cr3 = cr3
		sregs.Cr4 = x86.BootCR4
		sregs.Cr0 = x86.BootCR0
		sregs.Efer = x86.BootEFER
		regs.Rsi = bootArg
		regs.Rsp = x86.BootStackTop
		regs.Rbp = x86.BootStackTop
	default:
		return fmt.Errorf("unknown boot protocol %v", proto)
	}
	sregs.Cs = kvmSegment(code)
	d := kvmSegment(data)
	sregs.Ds, sregs.Es, sregs.Fs, sregs.Gs, sregs.Ss = d, d, d, d, d
	sregs.Tr = kvmSegment(tss)
	if err := c.SetSregs(sregs); err != nil {
		return err
	}
	return c.SetRegs(regs)
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
