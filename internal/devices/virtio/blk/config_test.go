package blk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

func mkfifo(path string) error { return unix.Mkfifo(path, 0o600) }

func TestParseConfig(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Config
		err  string // substring of the error, "" for success
	}{
		{"path=/d.img", Config{Path: "/d.img"}, ""},
		{"/d.img", Config{Path: "/d.img"}, ""},
		{"/d.img,ro=on,id=root,serial=ABC,cache=none,queues=4,format=raw",
			Config{Path: "/d.img", ReadOnly: true, ID: "root", Serial: "ABC", Cache: CacheNone, Queues: 4, Format: FormatRaw}, ""},
		{"path=/d.img,ro=off,cache=unsafe", Config{Path: "/d.img", Cache: CacheUnsafe}, ""},
		{"file=/q.qcow2,readonly=true,format=qcow2", Config{Path: "/q.qcow2", ReadOnly: true, Format: FormatQcow2}, ""},
		{"", Config{}, "empty"},
		{"ro=on", Config{}, "no path"},
		{"/d.img,ro=maybe", Config{}, "ro=maybe: want on or off"},
		{"/d.img,cache=directsync", Config{}, "cache=directsync"},
		{"/d.img,queues=0", Config{}, "queues=0: want a number from 1 to 16"},
		{"/d.img,queues=17", Config{}, "queues=17"},
		{"/d.img,queues=x", Config{}, "queues=x"},
		{"/d.img,format=vmdk", Config{}, "format=vmdk"},
		{"/d.img,serial=" + strings.Repeat("s", 21), Config{}, "longer than 20 bytes"},
		{"/d.img,speed=1", Config{}, `unknown option "speed"`},
		{"/d.img,ro", Config{}, `expected key=value, got "ro"`},
	} {
		got, err := ParseConfig(c.in)
		if c.err != "" {
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseConfig(%q) = %v; want ErrConfig containing %q", c.in, err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("ParseConfig(%q): multi-line error", c.in)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseConfig(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := mkfifo(fifo); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"missing file", Config{Path: filepath.Join(dir, "nope")}, ErrOpen},
		{"directory", Config{Path: dir}, ErrFileType},
		{"FIFO (never opened: it would block)", Config{Path: fifo}, ErrFileType},
		{"character device", Config{Path: "/dev/null"}, ErrFileType},
		{"qcow2 format on a raw file", Config{Path: newImage(t, make([]byte, 4096)), Format: FormatQcow2, ReadOnly: true}, ErrFormat},
		{"bad config", Config{Path: "/x", Queues: 99}, ErrConfig},
	} {
		if _, err := Open(c.cfg, quietLog()); !errors.Is(err, c.want) {
			t.Errorf("%s: Open = %v, want %v", c.name, err, c.want)
		}
	}
	// A file whose size is not a multiple of 512 shows its whole sectors.
	dev, err := Open(Config{Path: newImage(t, make([]byte, 4096+100))}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if info := dev.Info(); info.Size != 4096 || info.Format != FormatRaw || info.ID != "disk0" || info.Cache != CacheWriteback || info.Queues != 1 {
		t.Errorf("Info = %+v", info)
	}
}

// TestCacheNone: cache=none opens with O_DIRECT where the file system
// allows it, and reads and writes work either way (guest buffers that
// direct I/O refuses go through a buffered descriptor).
func TestCacheNone(t *testing.T) {
	img := pattern(diskSize, 11)
	r := newRig(t, Config{Path: newImage(t, img), Cache: CacheNone})
	raw := r.dev.disk.(*rawFile)
	t.Logf("O_DIRECT in use: %v (alignment %d)", raw.direct, raw.dioAlign)
	data := pattern(8*SectorSize, 12)
	if res := r.do(0, typeOut, 16, data, 0); res.status != statusOK {
		t.Fatalf("write: status %d", res.status)
	}
	if res := r.do(0, typeIn, 16, nil, len(data)); res.status != statusOK || string(res.data) != string(data) {
		t.Fatalf("read: status %d", res.status)
	}
	// A misaligned guest buffer (offset 1 in a page).
	q := r.qs[0]
	buf := q.drv.Alloc(8192) + 1
	r.write(q.hdr, header(typeIn, 16))
	r.chain(0, virtiotest.Buf{Addr: q.hdr, Len: 16}, virtiotest.Buf{Addr: buf, Len: SectorSize, Write: true}, virtiotest.Buf{Addr: q.status, Len: 1, Write: true})
	if got := virtiotest.Bytes(t, r.mem, buf, SectorSize); string(got) != string(data[:SectorSize]) {
		t.Fatal("misaligned read returned the wrong bytes")
	}
	if res := r.do(0, typeFlush, 0, nil, 0); res.status != statusOK {
		t.Fatalf("flush: status %d", res.status)
	}
	// O_DIRECT on tmpfs fails; the device falls back to the page cache.
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		f, err := os.CreateTemp("/dev/shm", "vireo-blk-*")
		if err == nil {
			f.Truncate(diskSize)
			f.Close()
			defer os.Remove(f.Name())
			dev, err := Open(Config{Path: f.Name(), Cache: CacheNone}, quietLog())
			if err != nil {
				t.Fatalf("cache=none on tmpfs: %v", err)
			}
			dev.Close()
		}
	}
}
