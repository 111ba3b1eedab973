package loader

import (
	"encoding/binary"
	"io"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// isBzImage reports whether head carries the "HdrS" setup-header magic.
func isBzImage(head []byte) bool {
	return len(head) >= hdrMagic+4 && binary.LittleEndian.Uint32(head[hdrMagic:]) == hdrSMagic
}

// setupHeader is the part of a bzImage setup header the loader uses.
type setupHeader struct {
	raw           []byte // file bytes [0x1f1, header end)
	version       uint16
	setupSects    uint64
	loadflags     uint8
	xloadflags    uint16
	relocatable   bool
	alignment     uint64
	cmdlineSize   uint64
	initrdAddrMax uint64
	prefAddress   uint64 // 2.10+
	initSize      uint64 // 2.10+
}

// parseSetupHeader validates the setup header in the first bytes of a
// bzImage.
func parseSetupHeader(head []byte) (*setupHeader, error) {
	le := binary.LittleEndian
	if len(head) <= hdrJumpLen {
		return nil, errorf(ErrTruncated, "bzImage setup header is cut short")
	}
	if le.Uint16(head[hdrBootFlag:]) != bootFlagMagic {
		return nil, errorf(ErrInvalid, "bzImage boot_flag is %#04x, want 0xaa55", le.Uint16(head[hdrBootFlag:]))
	}
	end := hdrMagic + int(head[hdrJumpLen])
	if end > hdrMaxEnd {
		return nil, errorf(ErrInvalid, "bzImage setup header ends at %#x, past the %#x that boot_params allows", end, hdrMaxEnd)
	}
	if end > len(head) {
		return nil, errorf(ErrTruncated, "bzImage setup header ends at %#x but the file has %d bytes", end, len(head))
	}
	if end < hdrVersion+2 {
		return nil, errorf(ErrInvalid, "bzImage setup header ends at %#x, before its protocol version", end)
	}
	h := &setupHeader{version: le.Uint16(head[hdrVersion:])}
	if h.version < minBootProtocol {
		return nil, errorf(ErrUnsupported, "bzImage boot protocol %d.%02d is too old (2.06 or later is needed)", h.version>>8, h.version&0xff)
	}
	need := hdrEndFor2_06
	if h.version >= bootProtocol2_10 {
		need = hdrEndFor2_10
	}
	if end < need {
		return nil, errorf(ErrInvalid, "bzImage setup header ends at %#x, too short for boot protocol %d.%02d", end, h.version>>8, h.version&0xff)
	}
	h.raw = append([]byte(nil), head[hdrStart:end]...)
	h.setupSects = uint64(head[hdrSetupSects])
	if h.setupSects == 0 {
		h.setupSects = defaultSetupSects
	}
	h.loadflags = head[hdrLoadflags]
	h.xloadflags = le.Uint16(head[hdrXloadflags:])
	h.relocatable = head[hdrRelocatable] != 0
	h.alignment = uint64(le.Uint32(head[hdrKernelAlignment:]))
	h.cmdlineSize = uint64(le.Uint32(head[hdrCmdlineSize:]))
	h.initrdAddrMax = uint64(le.Uint32(head[hdrInitrdAddrMax:]))
	if h.version >= bootProtocol2_10 {
		h.prefAddress = le.Uint64(head[hdrPrefAddress:])
		h.initSize = uint64(le.Uint32(head[hdrInitSize:]))
	}
	switch {
	case h.loadflags&loadedHigh == 0:
		return nil, errorf(ErrUnsupported, "zImage kernels (loaded below 1 MiB) are not supported")
	case h.xloadflags&xlfKernel64 == 0:
		return nil, errorf(ErrUnsupported, "bzImage has no 64-bit entry point (XLF_KERNEL_64 is not set)")
	case h.cmdlineSize == 0:
		return nil, errorf(ErrInvalid, "bzImage cmdline_size is 0")
	case h.initrdAddrMax == 0:
		return nil, errorf(ErrInvalid, "bzImage initrd_addr_max is 0")
	case h.relocatable && (h.alignment == 0 || h.alignment&(h.alignment-1) != 0):
		return nil, errorf(ErrInvalid, "bzImage kernel_alignment %#x is not a power of two", h.alignment)
	}
	return h, nil
}

// runtimeStart is where the kernel decompresses itself and runs when its
// protected-mode part is loaded at load: a relocatable kernel aligns the load
// address up to kernel_alignment but goes no lower than pref_address; a
// non-relocatable one moves to pref_address.
func (h *setupHeader) runtimeStart(load uint64) (uint64, bool) {
	start := load
	if h.relocatable {
		var ok bool
		if start, ok = alignUp(load, h.alignment); !ok {
			return 0, false
		}
	}
	if h.version >= bootProtocol2_10 && (!h.relocatable || h.prefAddress > start) {
		start = h.prefAddress
	}
	return start, true
}

// loadBzImage validates a bzImage and loads its protected-mode part at 1 MiB.
func loadBzImage(mem *guestmem.Memory, r io.ReaderAt, fileSize uint64, head []byte) (*Kernel, error) {
	h, err := parseSetupHeader(head)
	if err != nil {
		return nil, err
	}
	setupSize := (h.setupSects + 1) * setupSectorSize
	if setupSize >= fileSize {
		return nil, errorf(ErrTruncated, "bzImage of %d bytes ends inside its %d bytes of setup code", fileSize, setupSize)
	}
	kernelSize := fileSize - setupSize
	if kernelSize <= bzEntryOffset {
		return nil, errorf(ErrTruncated, "bzImage kernel part of %d bytes cannot hold the 64-bit entry at +%#x", kernelSize, bzEntryOffset)
	}
	const load = x86.HighMemStart
	lowTop := firstRegionEnd(mem)
	if ram := mem.Size(); kernelSize > ram {
		return nil, errorf(ErrTooLarge, "kernel image is %s but guest RAM is %s", human(kernelSize), human(ram))
	}
	if lowTop < load || kernelSize > lowTop-load {
		return nil, errorf(ErrTooLarge, "kernel image of %s loaded at 1 MiB does not fit below %s, the end of low guest RAM", human(kernelSize), human(lowTop))
	}
	start, ok := h.runtimeStart(load)
	if !ok || start < x86.HighMemStart {
		return nil, errorf(ErrInvalid, "bzImage would run at %#x, outside high memory (pref_address %#x, kernel_alignment %#x)", start, h.prefAddress, h.alignment)
	}
	if start > lowTop || h.initSize > lowTop-start {
		return nil, errorf(ErrTooLarge, "kernel needs %s at %#x to decompress and start (init_size) but low guest RAM ends at %s",
			human(h.initSize), start, human(lowTop))
	}
	if err := readInto(mem, r, setupSize, load, kernelSize); err != nil {
		return nil, err
	}
	end, _ := alignUp(max(load+kernelSize, start+h.initSize), pageSize) // below lowTop: no overflow
	return &Kernel{
		Protocol:      ProtocolLinux64,
		Format:        FormatBzImage,
		Entry:         load + bzEntryOffset,
		LoadAddr:      load,
		End:           end,
		CmdlineMax:    h.cmdlineSize,
		InitrdAddrMax: h.initrdAddrMax,
		Setup:         h.raw,
	}, nil
}
