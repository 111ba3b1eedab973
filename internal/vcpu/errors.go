package vcpu

import (
	"fmt"
	"strings"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/kvm"
)

// ErrEmulation marks a guest instruction KVM could not emulate.
var ErrEmulation = fmt.Errorf("instruction emulation failed")

func describeRIP(cpu *kvm.VCPU) string {
	regs, err := cpu.Regs()
	if err != nil {
		return ""
	}
	sregs, err := cpu.Sregs()
	if err != nil {
		return fmt.Sprintf(" at RIP %#x", regs.Rip)
	}
	return fmt.Sprintf(" at RIP %#x (CS base %#x, CR0 %#x, EFER %#x)", regs.Rip, sregs.Cs.Base, sregs.Cr0, sregs.Efer)
}

// instructionBytes reads up to 15 bytes at CS:RIP through the guest's page tables.
func instructionBytes(cpu *kvm.VCPU, mem *guestmem.Memory) []byte {
	if mem == nil {
		return nil
	}
	regs, err := cpu.Regs()
	if err != nil {
		return nil
	}
	sregs, err := cpu.Sregs()
	if err != nil {
		return nil
	}
	lin := sregs.Cs.Base + regs.Rip
	var out []byte
	for len(out) < 15 {
		gpa, ok, err := cpu.Translate(lin + uint64(len(out)))
		if err != nil || !ok {
			break
		}
		b, err := mem.Slice(gpa, 1)
		if err != nil {
			break
		}
		out = append(out, b[0])
	}
	return out
}

func internalError(cpu *kvm.VCPU, mem *guestmem.Memory, ie kvm.InternalError) error {
	if len(ie.Insn) == 0 && ie.Suberror == kvm.InternalErrorEmulation {
		ie.Insn = instructionBytes(cpu, mem)
	}
	what := "internal error"
	switch ie.Suberror {
	case kvm.InternalErrorEmulation:
		what = "emulation failure"
	case kvm.InternalErrorSimulEx:
		what = "exception while delivering an exception"
	case kvm.InternalErrorDeliveryEv:
		what = "event delivery failed"
	case kvm.InternalErrorUnexpectedExitReason:
		what = "unexpected exit reason"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "vCPU %d: KVM %s (suberror %d)%s", cpu.ID, what, ie.Suberror, describeRIP(cpu))
	if len(ie.Insn) > 0 {
		b.WriteString(", instruction bytes")
		for _, x := range ie.Insn {
			fmt.Fprintf(&b, " %02x", x)
		}
	}
	if ie.Suberror == kvm.InternalErrorEmulation {
		return fmt.Errorf("%s: %w", b.String(), ErrEmulation)
	}
	return fmt.Errorf("%s", b.String())
}
