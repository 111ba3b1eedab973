package blk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildQcow2 lays out a minimal version 3 qcow2 image with 512-byte
// clusters: the header, the L1 table, one L2 table per 32 KiB of virtual
// disk that has data, and one data cluster per non-zero virtual cluster
// of content.
func buildQcow2(size uint64, content []byte) []byte {
	const cb, cluster = 9, 512
	const perL2 = cluster / 8
	l1Entries := (size + cluster*perL2 - 1) / (cluster * perL2)
	img := make([]byte, 2*cluster) // header, L1
	be := binary.BigEndian
	copy(img, qcow2Magic)
	be.PutUint32(img[4:], 3)
	be.PutUint32(img[20:], cb)
	be.PutUint64(img[24:], size)
	be.PutUint32(img[36:], uint32(l1Entries))
	be.PutUint64(img[40:], cluster)
	be.PutUint32(img[96:], 4)    // refcount_order
	be.PutUint32(img[100:], 104) // header_length; the end-of-extensions marker follows (zeros)
	for vc := uint64(0); vc*cluster < uint64(len(content)); vc++ {
		data := content[vc*cluster : min((vc+1)*cluster, uint64(len(content)))]
		if bytes.Equal(data, make([]byte, len(data))) {
			continue
		}
		l1i, l2i := vc/perL2, vc%perL2
		l2 := be.Uint64(img[cluster+8*l1i:]) &^ (1 << 63)
		if l2 == 0 {
			l2 = uint64(len(img))
			img = append(img, make([]byte, cluster)...)
			be.PutUint64(img[cluster+8*l1i:], l2|1<<63)
		}
		off := uint64(len(img))
		img = append(img, data...)
		img = append(img, make([]byte, cluster-len(data))...)
		be.PutUint64(img[l2+8*l2i:], off|1<<63)
	}
	return img
}

func TestQcow2Builder(t *testing.T) {
	content := pattern(64<<10, 5)
	clear(content[8192:16384]) // unallocated clusters read as zeros
	r := newRig(t, Config{Path: newImage(t, buildQcow2(128<<10, content)), ReadOnly: true})
	if info := r.dev.Info(); info.Format != FormatQcow2 || info.Size != 128<<10 {
		t.Fatalf("Info = %+v", info)
	}
	want := append(content, make([]byte, 64<<10)...)
	for _, c := range []struct{ sector, n int }{{0, 1}, {3, 40}, {15, 20}, {120, 136}, {255, 1}} {
		res := r.do(0, typeIn, uint64(c.sector), nil, c.n*SectorSize)
		if res.status != statusOK || !bytes.Equal(res.data, want[c.sector*SectorSize:(c.sector+c.n)*SectorSize]) {
			t.Errorf("read of sectors %d+%d: status %d, data differs", c.sector, c.n, res.status)
		}
	}
	if res := r.do(0, typeOut, 0, make([]byte, SectorSize), 0); res.status != statusIOErr {
		t.Errorf("write to qcow2: status %d", res.status)
	}
	if res := r.do(0, typeIn, 256, nil, SectorSize); res.status != statusIOErr {
		t.Errorf("read past the virtual size: status %d", res.status)
	}
	// Without ro=on the image is refused with the message users see.
	_, err := Open(Config{Path: r.path}, quietLog())
	if !errors.Is(err, ErrQcow2Writable) || !strings.Contains(err.Error(), "qcow2 images are supported read-only: add ro=on") {
		t.Errorf("writable qcow2: %v", err)
	}
	// format=raw reads the file as it is.
	dev, err := Open(Config{Path: r.path, Format: FormatRaw}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	dev.Close()
}

func TestQcow2HeaderChecks(t *testing.T) {
	good := buildQcow2(1<<20, nil)
	be := binary.BigEndian
	mod := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	if _, err := parseQcow2Header(good, int64(len(good))); err != nil {
		t.Fatalf("good header: %v", err)
	}
	for _, c := range []struct {
		name string
		hdr  []byte
		want string
	}{
		{"backing file", mod(func(b []byte) { be.PutUint64(b[8:], 512); be.PutUint32(b[16:], 10) }), "backing files"},
		{"version 1", mod(func(b []byte) { be.PutUint32(b[4:], 1) }), "version 1"},
		{"version 4", mod(func(b []byte) { be.PutUint32(b[4:], 4) }), "version 4"},
		{"tiny clusters", mod(func(b []byte) { be.PutUint32(b[20:], 8) }), "cluster_bits 8"},
		{"huge clusters", mod(func(b []byte) { be.PutUint32(b[20:], 63) }), "cluster_bits 63"},
		{"encrypted", mod(func(b []byte) { be.PutUint32(b[32:], 1) }), "encrypted"},
		{"external data file", mod(func(b []byte) { be.PutUint64(b[72:], 1<<2) }), "incompatible features"},
		{"corrupt", mod(func(b []byte) { be.PutUint64(b[72:], 1<<1) }), "incompatible features"},
		{"extended L2", mod(func(b []byte) { be.PutUint64(b[72:], 1<<4) }), "incompatible features"},
		{"zero size", mod(func(b []byte) { be.PutUint64(b[24:], 0) }), "virtual size 0"},
		{"huge size", mod(func(b []byte) { be.PutUint64(b[24:], 1<<62) }), "too large"},
		{"L1 too small", mod(func(b []byte) { be.PutUint64(b[24:], 1<<30) }), "cannot map"},
		{"L1 too large", mod(func(b []byte) { be.PutUint32(b[36:], 1<<30) }), "too large"},
		{"L1 beyond the file", mod(func(b []byte) { be.PutUint64(b[40:], 1<<20) }), "beyond the end"},
		{"L1 misaligned", mod(func(b []byte) { be.PutUint64(b[40:], 520) }), "not cluster-aligned"},
		{"L1 at offset 0", mod(func(b []byte) { be.PutUint64(b[40:], 0) }), "not cluster-aligned"},
		{"short header length", mod(func(b []byte) { be.PutUint32(b[100:], 72) }), "header_length"},
		{"truncated", good[:80], "truncated"},
		{"no magic", mod(func(b []byte) { b[0] = 'X' }), "no qcow2 header"},
	} {
		_, err := parseQcow2Header(c.hdr, int64(len(good)))
		if !errors.Is(err, ErrQcow2) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrQcow2 containing %q", c.name, err, c.want)
		}
	}
	// The dirty bit only warns.
	if _, err := parseQcow2Header(mod(func(b []byte) { be.PutUint64(b[72:], 1) }), int64(len(good))); err != nil {
		t.Errorf("dirty image: %v", err)
	}
}

// TestQcow2FromQemuImg reads images made by qemu-img (version 2 and 3,
// compressed or not) and refuses one with a backing file.
func TestQcow2FromQemuImg(t *testing.T) {
	qemuImg, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Skip("qemu-img not installed (Debian qemu-utils)")
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	content := pattern(3<<20, 6)
	clear(content[1<<20 : 2<<20])
	if err := os.WriteFile(raw, content, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(qemuImg, args...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"v3", []string{"-o", "compat=1.1"}},
		{"v2", []string{"-o", "compat=0.10"}},
		{"compressed", []string{"-c"}},
		{"small clusters", []string{"-o", "cluster_size=4096"}},
	} {
		out := filepath.Join(dir, c.name+".qcow2")
		run(append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, c.args...), raw, out)...)
		r := newRig(t, Config{Path: out, ReadOnly: true})
		for _, off := range []int{0, 4096, 1<<20 - 4096, 1 << 20, 2<<20 - 8192, 3<<20 - 64<<10} {
			res := r.do(0, typeIn, uint64(off/SectorSize), nil, 64<<10)
			end := min(off+64<<10, len(content))
			if res.status != statusOK || !bytes.Equal(res.data[:end-off], content[off:end]) {
				t.Errorf("%s: read at %d: status %d, data differs", c.name, off, res.status)
			}
		}
	}
	overlay := filepath.Join(dir, "overlay.qcow2")
	run("create", "-f", "qcow2", "-b", filepath.Join(dir, "v3.qcow2"), "-F", "qcow2", overlay)
	if _, err := Open(Config{Path: overlay, ReadOnly: true}, quietLog()); !errors.Is(err, ErrQcow2) || !strings.Contains(err.Error(), "backing") {
		t.Errorf("qcow2 with a backing file: %v", err)
	}
}
