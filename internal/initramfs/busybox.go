package initramfs

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"time"
)

// Errors about the busybox binary.
var (
	ErrNoBusybox = errors.New("initramfs: no static busybox found (install Debian's busybox-static)")
	ErrNotStatic = errors.New("initramfs: busybox is not a static x86-64 executable (install Debian's busybox-static)")
)

// BusyboxPaths are the places FindBusybox looks, in order.
var BusyboxPaths = []string{"/bin/busybox", "/usr/bin/busybox"}

// FindBusybox returns the first of BusyboxPaths that is a statically linked
// x86-64 executable.
func FindBusybox() (string, error) {
	var reasons []string
	for _, p := range BusyboxPaths {
		data, err := os.ReadFile(p)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				reasons = append(reasons, err.Error())
			}
			continue
		}
		if err := checkStatic(p, data); err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		return p, nil
	}
	if len(reasons) == 0 {
		return "", fmt.Errorf("%w: none of %s exists", ErrNoBusybox, strings.Join(BusyboxPaths, ", "))
	}
	return "", fmt.Errorf("%w: %s", ErrNoBusybox, strings.Join(reasons, "; "))
}

// checkStatic reports whether data is an x86-64 ELF executable that needs no
// dynamic loader (no PT_INTERP program header). name is used in errors.
func checkStatic(name string, data []byte) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotStatic, name, err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("%w: %s is %v %v", ErrNotStatic, name, f.Class, f.Machine)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%w: %s is of type %v", ErrNotStatic, name, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: %s is dynamically linked", ErrNotStatic, name)
		}
	}
	return nil
}

// appletDirs are the directories applet links may go to.
var appletDirs = []string{"bin/", "sbin/", "usr/bin/", "usr/sbin/"}

// fallbackApplets is used when the busybox binary cannot be run on the host
// to ask for its applet list: the common tools, all linked from /bin.
var fallbackApplets = strings.Fields(`
	ash awk basename cat chmod chown cp cttyhack cut date dd df dirname dmesg
	echo env false find free grep halt head hostname id ip kill ln ls mkdir
	mknod mount mv nc pidof poweroff printf ps pwd readlink reboot rm rmdir
	sed seq setsid sh sleep sort stat stty sync tail tee test time top touch
	tr true umount uname uniq vi wc wget which xargs yes`)

// essentialApplets are the applets that need a link even when busybox's
// shell runs the others by name: interpreters named in #! lines, what init
// runs before /proc (and so /proc/self/exe) exists, and what the kernel
// itself may run.
var essentialApplets = []string{
	"sh", "ash", "env", "mount", "umount", "setsid", "cttyhack",
	"reboot", "poweroff", "halt",
}

// applets returns the archive paths ("bin/ls", "usr/bin/awk", ...) of the
// links to make to busybox. It asks the binary with `busybox --list-full`
// and falls back to fallbackApplets under bin/ when that fails. Unless all
// is set, it keeps only essentialApplets when the binary's shell finds
// applets without links: each link costs the guest kernel ~30,000
// instructions to unpack, seconds in all where those are emulated.
func applets(busybox string, all bool) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, busybox, "--list-full").Output()
	var links []string
	if err == nil {
		links = parseAppletList(out)
	}
	if len(links) == 0 {
		for _, a := range fallbackApplets {
			links = append(links, "bin/"+a)
		}
	}
	if all || !standaloneShell(ctx, busybox) {
		return links
	}
	return slices.DeleteFunc(links, func(l string) bool {
		return !slices.Contains(essentialApplets, path.Base(l))
	})
}

// standaloneShell reports whether busybox's shell runs its applets without
// links in $PATH (FEATURE_SH_STANDALONE), by asking it to run one with an
// empty PATH.
func standaloneShell(ctx context.Context, busybox string) bool {
	cmd := exec.CommandContext(ctx, busybox, "sh", "-c", "PATH=/nonexistent; basename /x/vireo-probe")
	cmd.Env = []string{}
	out, err := cmd.Output()
	return err == nil && string(out) == "vireo-probe\n"
}

// parseAppletList keeps the lines of `busybox --list-full` output that name
// an applet in one of appletDirs, dropping duplicates and busybox itself.
func parseAppletList(out []byte) []string {
	seen := map[string]bool{"bin/busybox": true}
	var links []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		for _, dir := range appletDirs {
			name, ok := strings.CutPrefix(line, dir)
			if !ok || name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
				continue
			}
			if !seen[line] {
				seen[line] = true
				links = append(links, line)
			}
			break
		}
	}
	return links
}
