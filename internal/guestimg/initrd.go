package guestimg

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/vireo-vmm/vireo/internal/initramfs"
)

// DefaultInitrd returns the path of the default guest's initramfs:
// $VIREO_INITRD if set, else <cache>/initramfs-<key>.cpio, built with
// initramfs.Build on first use. The key hashes the busybox binary, the init
// script and initramfs.LayoutVersion, so a change to any of them gives a new
// image. The image is written to a temporary file and renamed into place, so
// concurrent callers never see a partial one.
func DefaultInitrd() (string, error) {
	if p := os.Getenv(EnvInitrd); p != "" {
		if err := regularFile(p); err != nil {
			return "", fmt.Errorf("guestimg: %s: %w", EnvInitrd, err)
		}
		return p, nil
	}
	bb, err := initramfs.FindBusybox()
	if err != nil {
		return "", err
	}
	bin, err := os.ReadFile(bb)
	if err != nil {
		return "", fmt.Errorf("guestimg: read busybox: %w", err)
	}
	dir := CacheDir()
	p := filepath.Join(dir, "initramfs-"+initrdKey(bin, initramfs.DefaultInit)+".cpio")
	if regularFile(p) == nil {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("guestimg: cache: %w", err)
	}
	if err := buildAtomically(p, initramfs.Options{Busybox: bb}); err != nil {
		return "", err
	}
	return p, nil
}

// initrdKey is the cache key of an image built from busybox and init.
func initrdKey(busybox []byte, init string) string {
	h := sha256.New()
	h.Write([]byte("vireo initramfs layout " + strconv.Itoa(initramfs.LayoutVersion) + "\x00"))
	h.Write([]byte(strconv.Itoa(len(init)) + "\x00" + init))
	h.Write(busybox)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// buildAtomically builds an image into a temporary file next to p and
// renames it to p.
func buildAtomically(p string, o initramfs.Options) (err error) {
	f, err := os.CreateTemp(filepath.Dir(p), ".initramfs-*.tmp")
	if err != nil {
		return fmt.Errorf("guestimg: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := initramfs.Build(f, o); err != nil {
		return fmt.Errorf("guestimg: build %s: %w", p, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("guestimg: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("guestimg: %w", err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("guestimg: %w", err)
	}
	return nil
}
