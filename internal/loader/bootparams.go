package loader

import (
	"encoding/binary"

	"github.com/vireo-vmm/vireo/internal/arch/x86"
	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// Offsets into struct boot_params (the zero page) and into a bzImage, whose
// setup header sits at the same offset 0x1f1 in both
// (arch/x86/include/uapi/asm/bootparam.h, Documentation/arch/x86/boot.rst).
const (
	bpExtRamdiskImage = 0x0c0 // u32: bits 32-63 of ramdisk_image
	bpExtRamdiskSize  = 0x0c4 // u32: bits 32-63 of ramdisk_size
	bpExtCmdLinePtr   = 0x0c8 // u32: bits 32-63 of cmd_line_ptr
	bpE820Entries     = 0x1e8 // u8
	bpE820Table       = 0x2d0 // 128 packed entries of {u64 addr, u64 size, u32 type}
	bpSize            = 0x1000

	hdrStart           = 0x1f1 // start of struct setup_header
	hdrSetupSects      = 0x1f1 // u8: 512-byte setup sectors (0 means 4)
	hdrBootFlag        = 0x1fe // u16: 0xaa55
	hdrJumpLen         = 0x201 // u8: header length is 0x202 + this byte
	hdrMagic           = 0x202 // u32: "HdrS"
	hdrVersion         = 0x206 // u16: boot protocol version
	hdrTypeOfLoader    = 0x210 // u8
	hdrLoadflags       = 0x211 // u8
	hdrCode32Start     = 0x214 // u32
	hdrRamdiskImage    = 0x218 // u32
	hdrRamdiskSize     = 0x21c // u32
	hdrHeapEndPtr      = 0x224 // u16
	hdrCmdLinePtr      = 0x228 // u32
	hdrInitrdAddrMax   = 0x22c // u32 (2.03+)
	hdrKernelAlignment = 0x230 // u32 (2.05+)
	hdrRelocatable     = 0x234 // u8 (2.05+)
	hdrXloadflags      = 0x236 // u16 (2.12+)
	hdrCmdlineSize     = 0x238 // u32 (2.06+)
	hdrSetupData       = 0x250 // u64 (2.09+)
	hdrPrefAddress     = 0x258 // u64 (2.10+)
	hdrInitSize        = 0x260 // u32 (2.10+)
	hdrMaxEnd          = 0x290 // boot_params has room for the header up to here

	bootFlagMagic = 0xaa55
	hdrSMagic     = 0x53726448 // "HdrS"

	loadedHigh  = 1 << 0 // loadflags: protected-mode code at 0x100000
	canUseHeap  = 1 << 7 // loadflags: heap_end_ptr is valid
	xlfKernel64 = 1 << 0 // xloadflags: 64-bit entry at load address + 0x200

	// loaderTypeUndefined is type_of_loader 0xff: a boot loader without an
	// assigned id.
	loaderTypeUndefined = 0xff
	// heapEndPtr is heap_end_ptr: the setup heap ends 0xfe00 + 0x200 bytes
	// past the start of the real-mode code, the largest value allowed. The
	// 64-bit entry skips the real-mode code, so only the flag matters.
	heapEndPtr = 0xfe00

	// elfBootVersion is the protocol version written into a synthesized
	// header for an ELF kernel (2.15, Linux 5.5 and later); the kernel
	// treats a zero version as "boot_params not copied".
	elfBootVersion = 0x020f
	// elfKernelAlignment is the kernel_alignment written for an ELF kernel:
	// 16 MiB, CONFIG_PHYSICAL_ALIGN's default.
	elfKernelAlignment = 0x1000000

	e820EntrySize      = 20
	e820MaxZeroPage    = 128
	bzEntryOffset      = 0x200 // 64-bit entry past the protected-mode load address
	setupSectorSize    = 512
	defaultSetupSects  = 4
	minBootProtocol    = 0x0206
	bootProtocol2_10   = 0x020a
	hdrEndFor2_06      = hdrCmdlineSize + 4
	hdrEndFor2_10      = hdrInitSize + 4
	initrdAddrMaxLimit = fourGiB - 1
)

// writeBootParams writes struct boot_params for a Linux64 kernel at
// x86.ZeroPageStart.
func writeBootParams(mem *guestmem.Memory, k *Kernel, bi BootInfo) error {
	var bp [bpSize]byte
	le := binary.LittleEndian
	if k.Format == FormatBzImage {
		copy(bp[hdrStart:hdrMaxEnd], k.Setup)
		le.PutUint32(bp[hdrCode32Start:], uint32(k.LoadAddr))
		le.PutUint64(bp[hdrSetupData:], 0) // no setup_data list is passed
	} else {
		le.PutUint16(bp[hdrBootFlag:], bootFlagMagic)
		le.PutUint32(bp[hdrMagic:], hdrSMagic)
		le.PutUint16(bp[hdrVersion:], elfBootVersion)
		le.PutUint32(bp[hdrKernelAlignment:], elfKernelAlignment)
		le.PutUint32(bp[hdrCmdlineSize:], x86.CmdlineMax-1)
		le.PutUint32(bp[hdrInitrdAddrMax:], initrdAddrMaxLimit)
	}
	bp[hdrTypeOfLoader] = loaderTypeUndefined
	bp[hdrLoadflags] |= loadedHigh | canUseHeap
	le.PutUint16(bp[hdrHeapEndPtr:], heapEndPtr)
	le.PutUint32(bp[hdrCmdLinePtr:], x86.CmdlineStart)
	le.PutUint32(bp[bpExtCmdLinePtr:], 0)
	le.PutUint32(bp[hdrRamdiskImage:], uint32(bi.InitrdGPA))
	le.PutUint32(bp[bpExtRamdiskImage:], uint32(bi.InitrdGPA>>32))
	le.PutUint32(bp[hdrRamdiskSize:], uint32(bi.InitrdSize))
	le.PutUint32(bp[bpExtRamdiskSize:], uint32(bi.InitrdSize>>32))
	bp[bpE820Entries] = uint8(len(bi.E820)) // at most e820MaxZeroPage, checked by the caller
	for i, e := range bi.E820 {
		o := bpE820Table + i*e820EntrySize
		le.PutUint64(bp[o:], e.Addr)
		le.PutUint64(bp[o+8:], e.Size)
		le.PutUint32(bp[o+16:], e.Type)
	}
	if err := mem.WriteAt(bp[:], x86.ZeroPageStart); err != nil {
		return wrapf(ErrTooLarge, err, "writing boot_params at %#x", x86.ZeroPageStart)
	}
	return nil
}
