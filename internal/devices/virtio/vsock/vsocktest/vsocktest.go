// Package vsocktest builds the guest side of vsock tests and benchmarks:
// vsockecho, a small static C program (see csrc/vsockecho.c), and an
// initramfs that carries it. gcc and a static C library are needed on
// the host (Debian: gcc, libc6-dev).
package vsocktest

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/vireo-vmm/vireo/internal/initramfs"
)

// Source is vsockecho's C source.
//
//go:embed csrc/vsockecho.c
var Source []byte

// GuestPath is where Initrd puts the tool in the guest.
const GuestPath = "/bin/vsockecho"

// ErrNoCompiler reports that gcc is missing.
var ErrNoCompiler = errors.New("vsocktest: gcc is not installed")

// Build compiles vsockecho statically in dir and returns the binary.
func Build(dir string) ([]byte, error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return nil, ErrNoCompiler
	}
	src := filepath.Join(dir, "vsockecho.c")
	bin := filepath.Join(dir, "vsockecho")
	if err := os.WriteFile(src, Source, 0o644); err != nil {
		return nil, fmt.Errorf("vsocktest: %w", err)
	}
	out, err := exec.Command(gcc, "-static", "-O2", "-s", "-Wall", "-o", bin, src).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("vsocktest: gcc -static vsockecho.c: %w\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("vsocktest: %w", err)
	}
	return b, nil
}

// Initrd writes to path the default guest's initramfs (busybox, the
// default init) with vsockecho at GuestPath and the extra files.
func Initrd(path string, extra map[string][]byte) error {
	bin, err := Build(filepath.Dir(path))
	if err != nil {
		return err
	}
	files := map[string][]byte{GuestPath: bin}
	for k, v := range extra {
		files[k] = v
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("vsocktest: %w", err)
	}
	if err := initramfs.Build(f, initramfs.Options{Extra: files}); err != nil {
		f.Close()
		return fmt.Errorf("vsocktest: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("vsocktest: %w", err)
	}
	return nil
}
