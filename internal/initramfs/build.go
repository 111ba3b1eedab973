package initramfs

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
)

// LayoutVersion changes whenever Build lays out a different archive for the
// same inputs. Caches of built images include it in their key.
const LayoutVersion = 2

// Options configures Build. The zero value builds the default guest.
type Options struct {
	// Busybox is the path of a static busybox binary; empty means the
	// first static one of BusyboxPaths.
	Busybox string
	// Init is the /init script; empty means DefaultInit.
	Init string
	// AllApplets links every busybox applet into the image. By default only
	// a few essential ones are linked when busybox's shell runs applets
	// without links (Debian's busybox-static does), because every link
	// slows the guest kernel's unpacking of the image.
	AllApplets bool
	// Extra holds additional files (guest path -> content), added with mode
	// 0755 after everything else; missing parent directories are created.
	// Executables under /etc/vireo-init.d are run by DefaultInit.
	Extra map[string][]byte
}

// skeleton lists the directories of the default guest, parents first.
var skeleton = []struct {
	path string
	mode fs.FileMode
}{
	{"bin", 0o755}, {"sbin", 0o755}, {"usr", 0o755}, {"usr/bin", 0o755},
	{"usr/sbin", 0o755}, {"dev", 0o755}, {"etc", 0o755}, {"mnt", 0o755},
	{"proc", 0o555}, {"sys", 0o555}, {"root", 0o700},
	{"tmp", 0o777 | fs.ModeSticky},
}

// Build writes the default guest's initramfs to w as an uncompressed newc
// cpio archive: busybox with links to its applets (see Options.AllApplets),
// the skeleton directories, /dev/console and /dev/ttyS0, a minimal /etc
// (fstab, passwd, group) and /init.
func Build(w io.Writer, o Options) error {
	bb := o.Busybox
	if bb == "" {
		var err error
		if bb, err = FindBusybox(); err != nil {
			return err
		}
	}
	bin, err := os.ReadFile(bb)
	if err != nil {
		return fmt.Errorf("initramfs: read busybox: %w", err)
	}
	if err := checkStatic(bb, bin); err != nil {
		return err
	}
	init := o.Init
	if init == "" {
		init = DefaultInit
	}

	a := New(w)
	for _, d := range skeleton {
		if err := a.Dir(d.path, d.mode); err != nil {
			return err
		}
	}
	if err := a.CharDev("dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	if err := a.CharDev("dev/ttyS0", 0o660, 4, 64); err != nil {
		return err
	}
	if err := a.File("bin/busybox", 0o755, bin); err != nil {
		return err
	}
	for _, link := range applets(bb, o.AllApplets) {
		if err := a.Symlink(link, "/bin/busybox"); err != nil {
			return err
		}
	}
	for _, f := range []struct{ path, data string }{
		{"etc/fstab", fstab}, {"etc/passwd", passwd}, {"etc/group", group},
	} {
		if err := a.File(f.path, 0o644, []byte(f.data)); err != nil {
			return err
		}
	}
	if err := a.File("init", 0o755, []byte(init)); err != nil {
		return err
	}
	extra := make([]string, 0, len(o.Extra))
	for p := range o.Extra {
		extra = append(extra, p)
	}
	slices.Sort(extra)
	for _, p := range extra {
		if err := a.File(p, 0o755, o.Extra[p]); err != nil {
			return err
		}
	}
	return a.Close()
}
