package main

import (
	_ "embed" // the guest tool's source
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/vireo-vmm/vireo/internal/initramfs"
)

// blkbenchSource is the guest tool, a small static C program.
//
//go:embed guest/blkbench.c
var blkbenchSource []byte

// guestReady is what the tool prints once it reads commands.
const guestReady = "blkbench: ready"

// initScript runs the tool on the console in place of the shell.
const initScript = "#!/bin/sh\nexec /bin/blkbench\n"

// buildInitrd compiles the guest tool with gcc -static and writes the
// default guest's initramfs with the tool started at boot to dir.
func buildInitrd(dir string) (string, error) {
	src := filepath.Join(dir, "blkbench.c")
	bin := filepath.Join(dir, "blkbench")
	if err := os.WriteFile(src, blkbenchSource, 0o644); err != nil {
		return "", err
	}
	if out, err := exec.Command("gcc", "-static", "-pthread", "-O2", "-Wall", "-o", bin, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the guest tool (gcc -static, Debian gcc and libc6-dev): %v\n%s", err, out)
	}
	tool, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "initrd.cpio")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	err = initramfs.Build(f, initramfs.Options{Extra: map[string][]byte{
		"bin/blkbench":                 tool,
		"etc/vireo-init.d/50-blkbench": []byte(initScript),
	}})
	if err != nil {
		return "", err
	}
	return path, f.Close()
}

// makeImage writes a raw disk image of size bytes full of non-zero data
// (so that every block is allocated and reads move real bytes).
func makeImage(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + i>>12)
	}
	for off := int64(0); off < size; off += int64(len(buf)) {
		buf[0] = byte(off >> 20)
		if _, err := f.WriteAt(buf[:min(int64(len(buf)), size-off)], off); err != nil {
			return err
		}
	}
	return f.Close()
}
