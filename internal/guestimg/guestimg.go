// Package guestimg locates the default test guest: the kernel built by
// guest/build-kernel.sh, its command line, and a busybox initramfs built on
// demand and cached.
//
// The cache directory is $VIREO_CACHE, else $XDG_CACHE_HOME/vireo, else
// $HOME/.cache/vireo, the same rule guest/build-kernel.sh follows.
package guestimg

import (
	_ "embed" // for the default command line
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables that override the defaults.
const (
	EnvCache       = "VIREO_CACHE"        // cache directory
	EnvKernel      = "VIREO_KERNEL"       // guest kernel image
	EnvInitrd      = "VIREO_INITRD"       // guest initramfs
	EnvSharedGuest = "VIREO_SHARED_GUEST" // directory of a prebuilt guest
)

// Errors returned by this package.
var (
	// ErrNoKernel is returned by DefaultKernel when no kernel has been built.
	ErrNoKernel   = errors.New("no guest kernel: run guest/build-kernel.sh (or set " + EnvKernel + ")")
	ErrNotRegular = errors.New("guestimg: not a regular file")
)

// cmdline is a copy of guest/cmdline; a test keeps the two equal.
//
//go:embed cmdline
var cmdline string

// DefaultCmdline returns the kernel command line of the default guest, tuned
// for the fastest boot on hosts whose KVM emulates guest kernel code.
func DefaultCmdline() string {
	return strings.TrimSpace(cmdline)
}

// CacheDir returns the directory where guest images are cached. It does not
// create it.
func CacheDir() string {
	if d := os.Getenv(EnvCache); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "vireo")
	}
	if d := os.Getenv("HOME"); d != "" {
		return filepath.Join(d, ".cache", "vireo")
	}
	return filepath.Join(os.TempDir(), "vireo-cache")
}

// DefaultKernel returns the path of the guest kernel: $VIREO_KERNEL if set,
// else the vmlinux that guest/build-kernel.sh left in the cache.
func DefaultKernel() (string, error) {
	if p := os.Getenv(EnvKernel); p != "" {
		if err := regularFile(p); err != nil {
			return "", fmt.Errorf("guestimg: %s: %w", EnvKernel, err)
		}
		return p, nil
	}
	p := filepath.Join(CacheDir(), "guest", "vmlinux")
	if err := regularFile(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w; %s does not exist", ErrNoKernel, p)
		}
		return "", fmt.Errorf("guestimg: kernel: %w", err)
	}
	return p, nil
}

// SharedGuestDir returns a directory holding a prebuilt guest (vmlinux,
// bzImage, cmdline), or "" if there is none: $VIREO_SHARED_GUEST if set,
// else shared/guest beside the directory of the module that contains the
// working directory. Tests use it to skip building the kernel.
func SharedGuestDir() string {
	if d := os.Getenv(EnvSharedGuest); d != "" {
		if regularFile(filepath.Join(d, "vmlinux")) != nil {
			return ""
		}
		return d
	}
	root := moduleRoot()
	if root == "" {
		return ""
	}
	d := filepath.Join(filepath.Dir(root), "shared", "guest")
	if regularFile(filepath.Join(d, "vmlinux")) != nil {
		return ""
	}
	return d
}

// modulePath identifies this repository's go.mod.
const modulePath = "github.com/vireo-vmm/vireo"

// moduleRoot returns the directory of this module's go.mod found by walking
// up from the working directory, or "".
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
					return dir
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// regularFile returns nil if p names a regular file (after symlinks).
func regularFile(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s", ErrNotRegular, p)
	}
	return nil
}
