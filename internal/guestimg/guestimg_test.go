package guestimg

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/initramfs"
)

func TestDefaultCmdlineMatchesGuestDir(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "guest", "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	if cmdline != string(want) {
		t.Errorf("internal/guestimg/cmdline differs from guest/cmdline: copy guest/cmdline over it")
	}
	got := DefaultCmdline()
	if strings.ContainsAny(got, "\n\r") || !strings.Contains(got, "console=ttyS0") {
		t.Errorf("DefaultCmdline() = %q", got)
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv(EnvCache, "/c/v")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	t.Setenv("HOME", "/home/u")
	if got := CacheDir(); got != "/c/v" {
		t.Errorf("with %s: %q", EnvCache, got)
	}
	t.Setenv(EnvCache, "")
	if got := CacheDir(); got != "/xdg/vireo" {
		t.Errorf("with XDG_CACHE_HOME: %q", got)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	if got := CacheDir(); got != "/home/u/.cache/vireo" {
		t.Errorf("with HOME only: %q", got)
	}
	t.Setenv("HOME", "")
	if got := CacheDir(); !filepath.IsAbs(got) {
		t.Errorf("without HOME: %q is not absolute", got)
	}
}

func TestDefaultKernel(t *testing.T) {
	cache := t.TempDir()
	t.Setenv(EnvCache, cache)
	t.Setenv(EnvKernel, "")

	_, err := DefaultKernel()
	if !errors.Is(err, ErrNoKernel) || !strings.Contains(err.Error(), "guest/build-kernel.sh") {
		t.Fatalf("empty cache: %v, want ErrNoKernel", err)
	}

	built := filepath.Join(cache, "guest", "vmlinux")
	if err := os.MkdirAll(built, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := DefaultKernel(); !errors.Is(err, ErrNotRegular) {
		t.Errorf("directory as kernel: %v, want ErrNotRegular", err)
	}
	if err := os.Remove(built); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(built, []byte("elf"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := DefaultKernel(); err != nil || got != built {
		t.Errorf("built kernel: %q, %v; want %q", got, err, built)
	}

	own := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(own, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvKernel, own)
	if got, err := DefaultKernel(); err != nil || got != own {
		t.Errorf("%s: %q, %v; want %q", EnvKernel, got, err, own)
	}
	t.Setenv(EnvKernel, own+".missing")
	if _, err := DefaultKernel(); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), EnvKernel) {
		t.Errorf("missing %s: %v", EnvKernel, err)
	}
}

func TestSharedGuestDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvSharedGuest, dir)
	if got := SharedGuestDir(); got != "" {
		t.Errorf("directory without vmlinux: %q, want \"\"", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "vmlinux"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := SharedGuestDir(); got != dir {
		t.Errorf("%s: %q, want %q", EnvSharedGuest, got, dir)
	}

	t.Setenv(EnvSharedGuest, "")
	root := moduleRoot()
	if root == "" {
		t.Fatal("module root not found from the package directory")
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	got := SharedGuestDir()
	want := filepath.Join(filepath.Dir(root), "shared", "guest")
	if _, err := os.Stat(filepath.Join(want, "vmlinux")); err == nil {
		if got != want {
			t.Errorf("SharedGuestDir() = %q, want %q", got, want)
		}
	} else if got != "" {
		t.Errorf("SharedGuestDir() = %q without %s", got, want)
	}
}

func TestDefaultInitrd(t *testing.T) {
	if _, err := initramfs.FindBusybox(); err != nil {
		t.Skipf("%v", err)
	}
	cache := filepath.Join(t.TempDir(), "cache") // created on demand
	t.Setenv(EnvCache, cache)
	t.Setenv(EnvInitrd, "")

	p, err := DefaultInitrd()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(p) != cache || !strings.HasPrefix(filepath.Base(p), "initramfs-") || filepath.Ext(p) != ".cpio" {
		t.Errorf("image at %s, want %s/initramfs-<key>.cpio", p, cache)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("070701")) || !bytes.Contains(data[len(data)-16:], []byte("TRAILER!!!")) {
		t.Error("image is not an uncompressed newc archive")
	}
	if !bytes.Contains(data, []byte(initramfs.BootMarker)) {
		t.Error("image lacks the default init")
	}

	// A second call reuses the image.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	p2, err := DefaultInitrd()
	if err != nil || p2 != p {
		t.Fatalf("second call: %q, %v; want %q", p2, err, p)
	}
	if fi, err := os.Stat(p); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("image rebuilt on the second call")
	}
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("cache holds %d entries, want just the image", len(entries))
	}

	t.Setenv(EnvInitrd, p)
	if got, err := DefaultInitrd(); err != nil || got != p {
		t.Errorf("%s: %q, %v", EnvInitrd, got, err)
	}
	t.Setenv(EnvInitrd, filepath.Join(cache, "missing.cpio"))
	if _, err := DefaultInitrd(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing %s: %v", EnvInitrd, err)
	}
}

func TestDefaultInitrdUnwritableCache(t *testing.T) {
	if _, err := initramfs.FindBusybox(); err != nil {
		t.Skipf("%v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvInitrd, "")
	t.Setenv(EnvCache, filepath.Join(file, "cache")) // under a regular file
	if _, err := DefaultInitrd(); err == nil {
		t.Fatal("cache under a regular file: no error")
	}
}

func TestInitrdKey(t *testing.T) {
	base := initrdKey([]byte("busybox"), "init")
	if len(base) != 16 {
		t.Errorf("key %q, want 16 hex digits", base)
	}
	if initrdKey([]byte("busybox"), "init") != base {
		t.Error("key is not deterministic")
	}
	if initrdKey([]byte("busybox2"), "init") == base || initrdKey([]byte("busybox"), "init2") == base {
		t.Error("key ignores an input")
	}
	if initrdKey([]byte("xbusybox"), "init") == initrdKey([]byte("busybox"), "initx") {
		t.Error("key is ambiguous between init and busybox bytes")
	}
}
