package initramfs

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hostBusybox returns the host's static busybox or skips the test.
func hostBusybox(t *testing.T) string {
	t.Helper()
	bb, err := FindBusybox()
	if err != nil {
		t.Skipf("%v", err)
	}
	return bb
}

func TestBuildDefault(t *testing.T) {
	bb := hostBusybox(t)
	var buf bytes.Buffer
	extra := map[string][]byte{
		"/etc/vireo-init.d/10-test": []byte("#!/bin/sh\necho hi\n"),
		"opt/tool":                  []byte("x"),
	}
	if err := Build(&buf, Options{Extra: extra}); err != nil {
		t.Fatal(err)
	}
	recs := mustParse(t, buf.Bytes())

	seen := map[string]bool{}
	for _, r := range recs {
		if dir := filepath.Dir(r.name); dir != "." && !seen[dir] {
			t.Errorf("%s comes before its directory", r.name)
		}
		seen[r.name] = true
	}
	check := func(name string, mode uint32) record {
		t.Helper()
		r, ok := find(recs, name)
		if !ok {
			t.Fatalf("%s missing", name)
		}
		if r.mode != mode {
			t.Errorf("%s: mode %o, want %o", name, r.mode, mode)
		}
		return r
	}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "dev", "etc", "mnt"} {
		check(d, 0o40755)
	}
	check("proc", 0o40555)
	check("sys", 0o40555)
	check("root", 0o40700)
	check("tmp", 0o41777)
	check("etc/vireo-init.d", 0o40755)
	if r := check("dev/console", 0o20600); r.rmajor != 5 || r.rminor != 1 {
		t.Errorf("dev/console is %d:%d, want 5:1", r.rmajor, r.rminor)
	}
	if r := check("dev/ttyS0", 0o20660); r.rmajor != 4 || r.rminor != 64 {
		t.Errorf("dev/ttyS0 is %d:%d, want 4:64", r.rmajor, r.rminor)
	}
	want, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if r := check("bin/busybox", 0o100755); !bytes.Equal(r.data, want) {
		t.Error("bin/busybox differs from the host binary")
	}
	if r := check("init", 0o100755); string(r.data) != DefaultInit {
		t.Error("init differs from DefaultInit")
	}
	if r := check("etc/vireo-init.d/10-test", 0o100755); string(r.data) != "#!/bin/sh\necho hi\n" {
		t.Errorf("extra file holds %q", r.data)
	}
	check("opt/tool", 0o100755)
	if r := check("etc/fstab", 0o100644); !strings.Contains(string(r.data), "devtmpfs /dev devtmpfs") {
		t.Errorf("fstab does not mount devtmpfs on /dev:\n%s", r.data)
	}
	check("bin/sh", 0o120777) // the kernel runs /init through #!/bin/sh
	// The applets DefaultInit needs, wherever this busybox puts them.
	for _, applet := range []string{"mount", "setsid", "cttyhack", "reboot"} {
		i := slices.IndexFunc(recs, func(r record) bool {
			dir, ok := strings.CutSuffix(r.name, applet)
			return ok && slices.Contains(appletDirs, dir)
		})
		if i < 0 {
			t.Errorf("no link for %s", applet)
		} else if r := recs[i]; r.mode != 0o120777 || string(r.data) != "/bin/busybox" {
			t.Errorf("%s: mode %o -> %q, want a link to /bin/busybox", r.name, r.mode, r.data)
		}
	}
	if standaloneShell(context.Background(), bb) {
		if links := countLinks(recs); links > len(essentialApplets) {
			t.Errorf("%d applet links, want at most the %d essential ones", links, len(essentialApplets))
		}
	}

	buf.Reset()
	if err := Build(&buf, Options{AllApplets: true}); err != nil {
		t.Fatal(err)
	}
	if links := countLinks(mustParse(t, buf.Bytes())); links < 50 {
		t.Errorf("AllApplets: %d links, want the busybox applet list", links)
	}
}

func countLinks(recs []record) int {
	n := 0
	for _, r := range recs {
		if r.mode&0o170000 == 0o120000 {
			n++
		}
	}
	return n
}

func TestStandaloneShell(t *testing.T) {
	bb := hostBusybox(t)
	// Debian's busybox-static is built with FEATURE_SH_STANDALONE.
	t.Logf("%s runs applets without links: %v", bb, standaloneShell(context.Background(), bb))
	if standaloneShell(context.Background(), filepath.Join(t.TempDir(), "missing")) {
		t.Error("a missing binary probed as a standalone shell")
	}
	sh, err := exec.LookPath("sh")
	if err == nil && standaloneShell(context.Background(), sh) {
		t.Errorf("%s probed as a standalone busybox shell", sh)
	}
}

func TestBuildOptions(t *testing.T) {
	bb := hostBusybox(t)
	var buf bytes.Buffer
	if err := Build(&buf, Options{Busybox: bb, Init: "#!/bin/sh\nexec sh\n"}); err != nil {
		t.Fatal(err)
	}
	r, ok := find(mustParse(t, buf.Bytes()), "init")
	if !ok || string(r.data) != "#!/bin/sh\nexec sh\n" {
		t.Fatalf("custom init not used: %q", r.data)
	}
	if err := Build(&bytes.Buffer{}, Options{Busybox: bb, Extra: map[string][]byte{"/init": nil}}); !errors.Is(err, ErrExists) {
		t.Errorf("Extra replacing /init: %v, want ErrExists", err)
	}
}

func TestBuildRejectsNonStatic(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "busybox")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := Build(&bytes.Buffer{}, Options{Busybox: text})
	if !errors.Is(err, ErrNotStatic) || !strings.Contains(err.Error(), "busybox-static") {
		t.Errorf("script as busybox: %v, want ErrNotStatic naming busybox-static", err)
	}
	if err := Build(&bytes.Buffer{}, Options{Busybox: filepath.Join(dir, "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing busybox: %v, want ErrNotExist", err)
	}

	// A dynamically linked host binary, if there is one.
	sh, err := exec.LookPath("sh")
	if err != nil {
		return
	}
	f, err := elf.Open(sh)
	if err != nil {
		return
	}
	dynamic := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
	f.Close()
	if !dynamic {
		return
	}
	err = Build(&bytes.Buffer{}, Options{Busybox: sh})
	if !errors.Is(err, ErrNotStatic) || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("dynamic %s: %v, want ErrNotStatic (dynamically linked)", sh, err)
	}
}

func TestFindBusyboxNone(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "busybox")
	if err := os.WriteFile(fake, []byte("not elf"), 0o755); err != nil {
		t.Fatal(err)
	}
	saved := BusyboxPaths
	t.Cleanup(func() { BusyboxPaths = saved })

	BusyboxPaths = []string{filepath.Join(dir, "missing")}
	if _, err := FindBusybox(); !errors.Is(err, ErrNoBusybox) || !strings.Contains(err.Error(), "busybox-static") {
		t.Errorf("no candidates: %v", err)
	}
	BusyboxPaths = []string{fake}
	_, err := FindBusybox()
	if !errors.Is(err, ErrNoBusybox) || !strings.Contains(err.Error(), fake) {
		t.Errorf("non-ELF candidate: %v, want ErrNoBusybox naming %s", err, fake)
	}
	if err := Build(&bytes.Buffer{}, Options{}); !errors.Is(err, ErrNoBusybox) {
		t.Errorf("Build without busybox: %v, want ErrNoBusybox", err)
	}
}

func TestParseAppletList(t *testing.T) {
	out := []byte("linuxrc\nbin/sh\nbin/busybox\nusr/bin/awk\nsbin/reboot\n" +
		"bin/sh\netc/evil\nbin/a/b\nusr/sbin/\nbin/..\n  usr/sbin/chroot  \n")
	got := parseAppletList(out)
	want := []string{"bin/sh", "usr/bin/awk", "sbin/reboot", "usr/sbin/chroot"}
	if !slices.Equal(got, want) {
		t.Errorf("parseAppletList = %q, want %q", got, want)
	}
}

func TestAppletsFallback(t *testing.T) {
	got := applets(filepath.Join(t.TempDir(), "missing"), false)
	if len(got) != len(fallbackApplets) || !slices.Contains(got, "bin/sh") || !slices.Contains(got, "bin/cttyhack") {
		t.Errorf("fallback applets = %q", got)
	}
}

func TestDefaultInit(t *testing.T) {
	if !strings.HasPrefix(DefaultInit, "#!/bin/sh\n") {
		t.Error("DefaultInit lacks the #!/bin/sh line")
	}
	mount := strings.Index(DefaultInit, "mount -a")
	marker := strings.Index(DefaultInit, "echo "+BootMarker)
	if mount < 0 || marker < mount {
		t.Error("DefaultInit must mount, then print the marker")
	}
	if !strings.HasSuffix(DefaultInit, "reboot -f\n") {
		t.Error("DefaultInit must end with reboot -f")
	}
	bb, err := FindBusybox()
	if err != nil {
		t.Skipf("syntax check: %v", err)
	}
	cmd := exec.Command(bb, "sh", "-n")
	cmd.Stdin = strings.NewReader(DefaultInit)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("busybox sh -n: %v: %s", err, out)
	}
}
