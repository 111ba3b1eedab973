package harness

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "vmlinux")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckFile(f, "guest kernel", "pass -kernel"); err != nil {
		t.Errorf("regular file: %v", err)
	}
	err := CheckFile(filepath.Join(dir, "none"), "guest kernel", "pass -kernel")
	if !errors.Is(err, ErrMissing) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "pass -kernel") {
		t.Errorf("missing file: %v", err)
	}
	if err := CheckFile(dir, "initramfs", "pass -initrd"); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}
