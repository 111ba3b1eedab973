package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/initramfs"
	"github.com/vireo-vmm/vireo/internal/testutil"
)

// hostBinaries returns initramfs entries for host executables and every
// shared library they load (per ldd), the dynamic loader included, at
// their host paths, so that they run in the guest.
func hostBinaries(t *testing.T, bins ...string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	add := func(p string) {
		if _, ok := files[strings.TrimPrefix(p, "/")]; ok {
			return
		}
		data, err := os.ReadFile(p) // follows symlinks
		if err != nil {
			t.Fatalf("reading %s: %v", p, err)
		}
		files[strings.TrimPrefix(p, "/")] = data
	}
	lib := regexp.MustCompile(`(?m)(?:=>\s*)?(/\S+)\s+\(0x`)
	for _, b := range bins {
		path, err := exec.LookPath(b)
		if err != nil {
			testutil.Unavailable(t, "%s is not installed (see the Makefile's deps)", b)
		}
		add(path)
		out, err := exec.Command("ldd", path).Output()
		if err != nil {
			continue // static
		}
		for _, m := range lib.FindAllStringSubmatch(string(out), -1) {
			add(m[1])
		}
	}
	return files
}

// ext4Image makes a raw ext4 image of size bytes holding the given files.
func ext4Image(t *testing.T, path string, size int64, files map[string][]byte) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", path).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	for name, data := range files {
		src := filepath.Join(t.TempDir(), "src")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("debugfs", "-w", "-R", "write "+src+" "+name, path).CombinedOutput(); err != nil {
			t.Fatalf("debugfs write: %v\n%s", err, out)
		}
	}
}

// slowTimeout bounds guest commands that do much kernel work (file
// systems, many I/Os): guest kernel code is emulated on some hosts.
const slowTimeout = 4 * time.Minute

// ioError matches EIO as C libraries spell it.
var ioError = regexp.MustCompile(`(I/O|Input/output) error`)

func blkSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestVirtioBlk boots one guest with four disks and checks, in that one
// guest: a file system made by the guest on a writable disk (cache=none,
// two queues offered) whose files the host then reads back intact;
// discard (blkdiscard) giving blocks back to the host file; a read-only disk
// the guest cannot write; a read-only qcow2 image made by qemu-img; and,
// as root, a disk on a full tmpfs whose ENOSPC errors reach the guest as
// I/O errors while the VM carries on. QMP's query-block lists the disks.
func TestVirtioBlk(t *testing.T) {
	t.Parallel()
	kernel := requireGuest(t, "vmlinux")
	for _, tool := range []string{"mkfs.ext4", "debugfs", "e2fsck", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			testutil.Unavailable(t, "%s is not installed (Debian e2fsprogs, qemu-utils)", tool)
		}
	}
	dir := t.TempDir()

	// vda: 48 MiB of data (allocated on the host); the guest discards
	// part of it, then makes a file system on it.
	vda := filepath.Join(dir, "vda.raw")
	if err := os.WriteFile(vda, bytes.Repeat([]byte{0xa5}, 48<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// vdb: read-only ext4 with a file.
	roData := []byte("read-only disk contents\n")
	vdb := filepath.Join(dir, "vdb.raw")
	ext4Image(t, vdb, 8<<20, map[string][]byte{"ro.txt": roData})
	vdbSum := blkSHA(mustRead(t, vdb))
	// vdc: qcow2 made from a raw ext4 image.
	qData := bytes.Repeat([]byte("qcow2 block data "), 40000)
	qraw := filepath.Join(dir, "q.raw")
	ext4Image(t, qraw, 16<<20, map[string][]byte{"q.bin": qData})
	vdc := filepath.Join(dir, "vdc.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", qraw, vdc).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	disks := []string{
		"--disk", "path=" + vda + ",id=root,serial=vireo-root,cache=none,queues=2",
		"--disk", "path=" + vdb + ",ro=on,id=ro",
		"--disk", "path=" + vdc + ",ro=on,id=q",
	}
	// vdd: a sparse 4 MiB file on a 1 MiB tmpfs (root only).
	var vdd string
	if os.Geteuid() == 0 {
		mnt := filepath.Join(dir, "small")
		os.Mkdir(mnt, 0o755)
		if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatalf("mounting a small tmpfs: %v", err)
		}
		t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
		vdd = filepath.Join(mnt, "full.raw")
		if err := os.WriteFile(vdd, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(vdd, 4<<20); err != nil {
			t.Fatal(err)
		}
		disks = append(disks, "--disk", "path="+vdd+",id=full")
	} else if testutil.InCI() {
		t.Fatal("required under CI=true: root, for the ENOSPC disk on a small tmpfs")
	} else {
		t.Log("not root: skipping the ENOSPC disk")
	}

	extra := hostBinaries(t, "mkfs.ext4")
	initrd := filepath.Join(dir, "initrd.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		t.Fatal(err)
	}
	if err := initramfs.Build(f, initramfs.Options{Extra: extra}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	sock := filepath.Join(dir, "qmp.sock")
	args := append([]string{"run", "--kernel", kernel, "--initrd", initrd, "--cpus", "1", "--memory", "256M",
		"--no-reboot", "--qmp", "unix:" + sock + ",server=on,wait=off"}, disks...)
	g := testutil.StartGuest(t, args...)
	g.Expect("VIREO-BOOT-OK", bootTimeout)
	g.Expect(prompt, cmdTimeout)
	run := func(cmd string, timeout time.Duration) string {
		t.Helper()
		out := g.Run(cmd, timeout)
		if strings.Contains(out, "Segmentation fault") {
			out = g.Run(cmd, timeout)
		}
		return out
	}

	// mke2fs looks for mtab.
	if out := run("ln -sf /proc/mounts /etc/mtab; mkdir -p /mnt/a /mnt/b /mnt/c && echo ready", cmdTimeout); out != "ready" {
		t.Fatalf("preparing the guest: %q", out)
	}
	// The disks as the guest sees them.
	if got := run("cat /sys/block/vda/size /sys/block/vdb/size /sys/block/vda/ro /sys/block/vdb/ro /sys/block/vdc/ro", cmdTimeout); strings.Join(strings.Fields(got), " ") != "98304 16384 0 1 1" {
		t.Errorf("sizes and read-only flags: %q, want 98304 16384 0 1 1", got)
	}
	if got := run("cat /sys/block/vda/serial; echo", cmdTimeout); got != "vireo-root" {
		t.Errorf("vda serial %q", got)
	}
	// Two queues offered; a one-vCPU guest uses one.
	if got := run("cat /sys/block/vda/mq/*/cpu_list", cmdTimeout); got != "0" {
		t.Errorf("vda queues serve CPUs %q, want 0", got)
	}

	// (4) Discard: the guest discards the first 16 MiB; the host file
	// gives those blocks back.
	before := allocated(t, vda)
	out := run("blkdiscard -o 0 -l 16777216 /dev/vda; echo rc=$?", slowTimeout)
	if after := allocated(t, vda); !strings.Contains(out, "rc=0") || before-after < 15<<20 {
		t.Errorf("blkdiscard (%q) freed %d bytes of the host file (%d -> %d), want 16 MiB", out, before-after, before, after)
	}

	// (1) The guest makes and fills a file system.
	if out := run("mkfs.ext4 -q -F -J size=1 /dev/vda && echo MKFS-OK", slowTimeout); !strings.HasSuffix(out, "MKFS-OK") {
		t.Fatalf("mkfs.ext4 in the guest: %q", out)
	}
	run("mount -t ext4 /dev/vda /mnt/a && echo hello vireo > /mnt/a/small && mkdir /mnt/a/d && echo nested > /mnt/a/d/f", slowTimeout)
	run("dd if=/dev/urandom of=/mnt/a/keep bs=4k count=64 2>/dev/null; sync", slowTimeout)
	sums := map[string]string{}
	for _, line := range strings.Split(run("sha256sum /mnt/a/small /mnt/a/d/f /mnt/a/keep > /tmp/sums; cat /tmp/sums", slowTimeout), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			sums[strings.TrimPrefix(f[1], "/mnt/a/")] = f[0]
		}
	}
	if len(sums) != 3 {
		t.Fatalf("guest checksums: %v", sums)
	}
	run("umount /mnt/a", slowTimeout)

	// (2) The read-only disk refuses writes; its files read fine.
	if out := run("dd if=/dev/zero of=/dev/vdb bs=512 count=1 2>&1; echo rc=$?", cmdTimeout); !strings.Contains(out, "rc=1") {
		t.Errorf("writing the read-only disk: %q", out)
	}
	if got := run("mount -o ro -t ext4 /dev/vdb /mnt/b && cat /mnt/b/ro.txt", cmdTimeout); got != strings.TrimSpace(string(roData)) {
		t.Errorf("read-only disk file: %q", got)
	}
	if out := run("touch /mnt/b/x 2>&1; echo rc=$?", cmdTimeout); !strings.Contains(out, "Read-only file system") {
		t.Errorf("creating a file on the read-only disk: %q", out)
	}
	run("umount /mnt/b", cmdTimeout)

	// (6) The qcow2 image reads back.
	if got := run("mount -o ro -t ext4 /dev/vdc /mnt/c && sha256sum /mnt/c/q.bin", cmdTimeout); !strings.HasPrefix(got, blkSHA(qData)) {
		t.Errorf("qcow2 file checksum: %q, want %s", got, blkSHA(qData))
	}
	run("umount /mnt/c", cmdTimeout)

	// (5) ENOSPC from the host reaches the guest as I/O errors; the VM
	// carries on.
	if vdd != "" {
		out := run("dd if=/dev/zero of=/dev/vdd bs=64k count=32 conv=fsync 2>&1; echo rc=$?", slowTimeout)
		if !strings.Contains(out, "rc=1") || !ioError.MatchString(out) {
			t.Errorf("writing past the host's free space: %q, want an I/O error", out)
		}
		if got := run("dmesg > /tmp/dm; grep -c 'I/O error, dev vdd' /tmp/dm", cmdTimeout); got == "0" || got == "" {
			t.Errorf("no I/O error for vdd in the guest's kernel log (%q)", got)
		}
		if got := run("echo still-$((40+2))", cmdTimeout); got != "still-42" {
			t.Errorf("guest after the I/O errors: %q", got)
		}
		if n := strings.Count(g.Stderr(), "host I/O error"); n < 1 || n > 10 {
			t.Errorf("%d host log lines about I/O errors, want a few (rate-limited)", n)
		}
	}

	// query-block lists the disks.
	mon := dialQMP(t, g, sock)
	var qb struct {
		Return []struct {
			Device   string
			Inserted struct {
				File  string
				RO    bool
				Drv   string
				Image struct {
					VirtualSize uint64 `json:"virtual-size"`
				}
			}
		}
	}
	raw, err := mon.Run([]byte(`{"execute":"query-block"}`))
	if err != nil || json.Unmarshal(raw, &qb) != nil {
		t.Fatalf("query-block: %s, %v", raw, err)
	}
	var got []string
	for _, d := range qb.Return {
		got = append(got, fmt.Sprintf("%s:%s:%v:%d", d.Device, d.Inserted.Drv, d.Inserted.RO, d.Inserted.Image.VirtualSize))
	}
	want := []string{"root:raw:false:50331648", "ro:raw:true:8388608", "q:qcow2:true:16777216"}
	if vdd != "" {
		want = append(want, "full:raw:false:4194304")
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("query-block: %v, want %v", got, want)
	}

	g.Send("reboot -f\n")
	if code := g.Wait(cmdTimeout); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}

	// The host reads the guest's file system: consistent, files intact.
	if out, err := exec.Command("e2fsck", "-fn", vda).CombinedOutput(); err != nil {
		t.Errorf("e2fsck of the guest's file system: %v\n%s", err, out)
	}
	for name, want := range sums {
		data, err := exec.Command("debugfs", "-R", "cat /"+name, vda).Output()
		if err != nil {
			t.Errorf("debugfs cat %s: %v", name, err)
			continue
		}
		if blkSHA(data) != want {
			t.Errorf("%s: host sha256 %s, guest %s", name, blkSHA(data), want)
		}
	}
	if blkSHA(mustRead(t, vdb)) != vdbSum {
		t.Error("the read-only disk image changed")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
