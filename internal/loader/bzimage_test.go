package loader

import (
	"bytes"
	"strings"
	"testing"
)

func TestLoadBzImage(t *testing.T) {
	mem := newMem(t, 16*mib)
	img := buildBz(defaultBz())
	k, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if k.Protocol != ProtocolLinux64 || k.Format != FormatBzImage {
		t.Errorf("protocol %v format %v, want linux64 bzimage", k.Protocol, k.Format)
	}
	if k.Entry != 0x100200 || k.LoadAddr != 0x100000 || k.ELFEntry != 0 {
		t.Errorf("entry %#x load %#x elf entry %#x, want 0x100200 0x100000 0", k.Entry, k.LoadAddr, k.ELFEntry)
	}
	if want := uint64(0x200000 + 0x400000); k.End != want {
		t.Errorf("end %#x, want %#x (runtime start + init_size)", k.End, want)
	}
	if k.CmdlineMax != 0x7ff || k.InitrdAddrMax != 0x7fffffff {
		t.Errorf("cmdline max %#x initrd max %#x, want 0x7ff 0x7fffffff", k.CmdlineMax, k.InitrdAddrMax)
	}
	if want := img[hdrStart:0x26c]; !bytes.Equal(k.Setup, want) {
		t.Errorf("setup header is %d bytes, want the %d bytes at 0x1f1", len(k.Setup), len(want))
	}
	if got := guestBytes(t, mem, 0x100000, 8192); !bytes.Equal(got, pattern(8192, 3)) {
		t.Error("protected-mode kernel not copied to 1 MiB")
	}
}

func TestLoadBzImageSetupSectsZero(t *testing.T) {
	mem := newMem(t, 16*mib)
	o := defaultBz()
	o.setupSects = 0 // means 4
	img := buildBz(o)
	if _, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img))); err != nil {
		t.Fatal(err)
	}
	if got := guestBytes(t, mem, 0x100000, 64); !bytes.Equal(got, pattern(8192, 3)[:64]) {
		t.Error("kernel not taken from (4+1)*512")
	}
}

func TestLoadBzImageMalformed(t *testing.T) {
	tests := []struct {
		name  string
		opts  func(o *bzOpts)
		patch func(b []byte) []byte
		want  error
		msg   string
	}{
		{name: "old protocol", opts: func(o *bzOpts) { o.version = 0x0205 }, want: ErrUnsupported, msg: "2.05 is too old"},
		{name: "no 64-bit entry", opts: func(o *bzOpts) { o.xloadflags = 0 }, want: ErrUnsupported, msg: "XLF_KERNEL_64"},
		{name: "zImage", opts: func(o *bzOpts) { o.loadflags = 0 }, want: ErrUnsupported, msg: "zImage"},
		{name: "cmdline_size 0", opts: func(o *bzOpts) { o.cmdlineSize = 0 }, want: ErrInvalid, msg: "cmdline_size"},
		{name: "initrd_addr_max 0", opts: func(o *bzOpts) { o.initrdMax = 0 }, want: ErrInvalid, msg: "initrd_addr_max"},
		{name: "alignment not power of two", opts: func(o *bzOpts) { o.alignment = 0x300000 }, want: ErrInvalid, msg: "power of two"},
		{name: "alignment zero", opts: func(o *bzOpts) { o.alignment = 0 }, want: ErrInvalid, msg: "power of two"},
		{name: "runs below 1 MiB", opts: func(o *bzOpts) { o.relocatable = 0; o.pref = 0x8000 }, want: ErrInvalid, msg: "outside high memory"},
		{name: "alignment overflows", opts: func(o *bzOpts) { o.alignment = 1 << 31; o.pref = 0 }, want: ErrTooLarge, msg: "init_size"},
		{name: "init_size beyond RAM", opts: func(o *bzOpts) { o.initSize = 15 * mib }, want: ErrTooLarge, msg: "init_size"},
		{name: "pref beyond RAM", opts: func(o *bzOpts) { o.relocatable = 0; o.pref = 1 << 40 }, want: ErrTooLarge, msg: "init_size"},
		{name: "setup beyond file", opts: func(o *bzOpts) { o.kernel = 0 }, want: ErrTruncated, msg: "setup code"},
		{name: "kernel too short", opts: func(o *bzOpts) { o.kernel = 0x100 }, want: ErrTruncated, msg: "64-bit entry"},
		{name: "setup_sects huge", patch: func(b []byte) []byte { b[hdrSetupSects] = 0xff; return b }, want: ErrTruncated, msg: "setup code"},
		{name: "no boot flag", patch: func(b []byte) []byte { b[hdrBootFlag] = 0; return b }, want: ErrInvalid, msg: "boot_flag"},
		{name: "header too long", patch: func(b []byte) []byte { b[hdrJumpLen] = 0xff; return b }, want: ErrInvalid, msg: "past the 0x290"},
		{name: "header too short", patch: func(b []byte) []byte { b[hdrJumpLen] = 0x40; return b }, want: ErrInvalid, msg: "too short for boot protocol 2.15"},
		{name: "header cut", patch: func(b []byte) []byte { return b[:0x230] }, want: ErrTruncated, msg: "setup header ends"},
		{name: "magic only", patch: func(b []byte) []byte { return b[:0x206] }, want: ErrTruncated, msg: ""},
		{name: "header ends before version", patch: func(b []byte) []byte { b[hdrJumpLen] = 0; return b[:0x206] }, want: ErrInvalid, msg: "before its protocol version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem(t, 16*mib)
			o := defaultBz()
			if tc.opts != nil {
				tc.opts(&o)
			}
			img := buildBz(o)
			if tc.patch != nil {
				img = tc.patch(img)
			}
			_, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
			checkErr(t, err, tc.want)
			t.Log(err)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

func TestLoadBzImageLargerThanRAM(t *testing.T) {
	mem := newMem(t, 16*mib)
	o := defaultBz()
	o.kernel = 20 * mib
	img := buildBz(o)
	_, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
	checkErr(t, err, ErrTooLarge)
	if want := "kernel image is 20 MiB but guest RAM is 16 MiB"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want %q", err, want)
	}
	o.kernel = 15*mib + 1
	img = buildBz(o)
	_, err = LoadKernel(mem, bytes.NewReader(img), int64(len(img)))
	checkErr(t, err, ErrTooLarge)
}

func TestRuntimeStart(t *testing.T) {
	tests := []struct {
		name        string
		version     uint16
		relocatable bool
		align, pref uint64
		want        uint64
	}{
		{"relocatable, pref above", 0x020f, true, 0x200000, 0x1000000, 0x1000000},
		{"relocatable, pref below", 0x020f, true, 0x200000, 0x100000, 0x200000},
		{"relocatable, no pref field", 0x0209, true, 0x400000, 0x1000000, 0x400000},
		{"fixed, pref", 0x020f, false, 0x200000, 0x1000000, 0x1000000},
		{"fixed, no pref field", 0x0206, false, 0, 0x1000000, 0x100000},
	}
	for _, tc := range tests {
		h := &setupHeader{version: tc.version, relocatable: tc.relocatable, alignment: tc.align, prefAddress: tc.pref}
		got, ok := h.runtimeStart(0x100000)
		if !ok || got != tc.want {
			t.Errorf("%s: runtimeStart = %#x, %v; want %#x", tc.name, got, ok, tc.want)
		}
	}
}
