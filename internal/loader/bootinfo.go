package loader

import (
	"strings"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// BootInfo is what WriteBootInfo passes to the kernel.
type BootInfo struct {
	// Cmdline is the kernel command line, without a terminating NUL.
	Cmdline string
	// InitrdGPA and InitrdSize locate the initrd (see LoadInitrd); a zero
	// size means no initrd.
	InitrdGPA, InitrdSize uint64
	// E820 is the guest memory map (see x86.E820).
	E820 []x86.E820Entry
}

// WriteBootInfo writes the NUL-terminated command line at x86.CmdlineStart
// and the boot structure k.Protocol expects: struct hvm_start_info at
// x86.PVHInfoStart (with the initrd module at x86.PVHModlistStart and the
// memory map at x86.PVHMemmapStart) for PVH, struct boot_params at
// x86.ZeroPageStart for Linux64. It returns the register value the entry
// point expects: EBX for PVH, RSI for Linux64.
func WriteBootInfo(mem *guestmem.Memory, k *Kernel, bi BootInfo) (bootArg uint64, err error) {
	if k == nil {
		return 0, errorf(ErrInvalid, "no kernel to write boot information for")
	}
	if bi.InitrdSize > 0 && !mem.Contains(bi.InitrdGPA, bi.InitrdSize) {
		return 0, errorf(ErrInvalid, "initrd at %#x+%#x is not inside guest RAM", bi.InitrdGPA, bi.InitrdSize)
	}
	if len(bi.E820) == 0 {
		return 0, errorf(ErrInvalid, "the memory map is empty")
	}
	switch k.Protocol {
	case ProtocolPVH:
		if len(bi.E820) > x86.PVHMemmapMax {
			return 0, errorf(ErrTooLarge, "memory map has %d entries, PVH boot takes at most %d", len(bi.E820), x86.PVHMemmapMax)
		}
	case ProtocolLinux64:
		if len(bi.E820) > e820MaxZeroPage {
			return 0, errorf(ErrTooLarge, "memory map has %d entries, boot_params holds at most %d", len(bi.E820), e820MaxZeroPage)
		}
		if k.Format == FormatBzImage && len(k.Setup) == 0 {
			return 0, errorf(ErrInvalid, "bzImage kernel has no setup header to pass on")
		}
	default:
		return 0, errorf(ErrInvalid, "unknown boot protocol %v", k.Protocol)
	}
	if err := writeCmdline(mem, k, bi.Cmdline); err != nil {
		return 0, err
	}
	if k.Protocol == ProtocolPVH {
		return x86.PVHInfoStart, writeStartInfo(mem, bi)
	}
	return x86.ZeroPageStart, writeBootParams(mem, k, bi)
}

// writeCmdline checks the command line against the buffer and the kernel's
// limit and writes it with its NUL at x86.CmdlineStart.
func writeCmdline(mem *guestmem.Memory, k *Kernel, cmdline string) error {
	limit := uint64(x86.CmdlineMax - 1)
	if k.CmdlineMax != 0 && k.CmdlineMax < limit {
		limit = k.CmdlineMax
	}
	if uint64(len(cmdline)) > limit {
		return errorf(ErrTooLarge, "kernel command line is %d bytes, longer than the %d the kernel accepts", len(cmdline), limit)
	}
	if i := strings.IndexByte(cmdline, 0); i >= 0 {
		return errorf(ErrInvalid, "kernel command line has a NUL byte at offset %d", i)
	}
	buf := make([]byte, len(cmdline)+1)
	copy(buf, cmdline)
	if err := mem.WriteAt(buf, x86.CmdlineStart); err != nil {
		return wrapf(ErrTooLarge, err, "writing the command line at %#x", x86.CmdlineStart)
	}
	return nil
}
