package blk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/vireo-vmm/vireo/internal/virtio"
	"github.com/vireo-vmm/vireo/internal/virtio/virtiotest"
)

const diskSize = 1 << 20 // 2048 sectors

func TestReadWrite(t *testing.T) {
	img := pattern(diskSize, 0)
	r := newRig(t, Config{Path: newImage(t, img)})

	// Read sectors 3-10.
	res := r.do(0, typeIn, 3, nil, 8*SectorSize)
	if res.status != statusOK || res.used != 8*SectorSize+1 {
		t.Fatalf("read: status %d, used %d", res.status, res.used)
	}
	if !bytes.Equal(res.data, img[3*SectorSize:11*SectorSize]) {
		t.Fatal("read returned the wrong bytes")
	}
	// Write sectors 100-131 and read them back, from the guest and the file.
	data := pattern(32*SectorSize, 0x5a)
	if res := r.do(0, typeOut, 100, data, 0); res.status != statusOK || res.used != 1 {
		t.Fatalf("write: status %d, used %d", res.status, res.used)
	}
	if res := r.do(0, typeIn, 100, nil, len(data)); !bytes.Equal(res.data, data) {
		t.Fatal("read after write differs")
	}
	file := r.fileBytes()
	copy(img[100*SectorSize:], data)
	if !bytes.Equal(file, img) {
		t.Fatal("the file does not hold exactly the written data")
	}
	// The last sector is reachable; zero-length transfers are fine.
	if res := r.do(0, typeIn, diskSize/SectorSize-1, nil, SectorSize); res.status != statusOK {
		t.Errorf("read of the last sector: status %d", res.status)
	}
	if res := r.do(0, typeOut, diskSize/SectorSize, nil, 0); res.status != statusOK {
		t.Errorf("empty write at the end: status %d", res.status)
	}
}

// TestFraming: the spec lets the driver frame a request any way; the
// header, data and status may share or split descriptors, directly or
// through an indirect table.
func TestFraming(t *testing.T) {
	img := pattern(diskSize, 1)
	r := newRig(t, Config{Path: newImage(t, img)})
	q := r.qs[0]
	a := q.drv.Alloc(4096)

	// Header and data in one readable descriptor, status alone.
	data := pattern(2*SectorSize, 0x33)
	r.write(a, append(header(typeOut, 7), data...))
	r.write(q.status, []byte{0xee})
	r.chain(0, virtiotest.Buf{Addr: a, Len: uint32(headerSize + len(data))}, virtiotest.Buf{Addr: q.status, Len: 1, Write: true})
	if s := virtiotest.Bytes(t, r.mem, q.status, 1)[0]; s != statusOK {
		t.Fatalf("combined header+data write: status %d", s)
	}
	if got := r.fileBytes()[7*SectorSize : 9*SectorSize]; !bytes.Equal(got, data) {
		t.Fatal("combined header+data write landed wrong")
	}

	// Read into data split in odd pieces, with the status in the last
	// piece, through an indirect table.
	r.write(q.hdr, header(typeIn, 7))
	out := q.drv.Alloc(2*SectorSize + 1)
	head := q.drv.WriteIndirect(q.indirect,
		virtiotest.Buf{Addr: q.hdr, Len: 10}, virtiotest.Buf{Addr: q.hdr + 10, Len: 6},
		virtiotest.Buf{Addr: out, Len: 100, Write: true},
		virtiotest.Buf{Addr: out + 100, Len: 0, Write: true},
		virtiotest.Buf{Addr: out + 100, Len: 2*SectorSize - 100 + 1, Write: true})
	q.drv.Publish(head)
	q.notify.Signal()
	if _, n := r.wait(0); n != 2*SectorSize+1 {
		t.Errorf("used length %d, want %d", n, 2*SectorSize+1)
	}
	got := virtiotest.Bytes(t, r.mem, out, 2*SectorSize+1)
	if !bytes.Equal(got[:2*SectorSize], data) || got[2*SectorSize] != statusOK {
		t.Fatal("split read returned wrong data or status")
	}
}

func TestFlushAndGetID(t *testing.T) {
	r := newRig(t, Config{Path: newImage(t, make([]byte, diskSize)), ID: "data", Serial: "SN-0123456789abcdefg"})
	if res := r.do(0, typeFlush, 0, nil, 0); res.status != statusOK {
		t.Errorf("flush: status %d", res.status)
	}
	res := r.do(0, typeGetID, 0, nil, idBytes)
	if res.status != statusOK || string(res.data) != "SN-0123456789abcdefg" || res.used != idBytes+1 {
		t.Errorf("GET_ID = %q, status %d, used %d", res.data, res.status, res.used)
	}
	// A short buffer gets what fits.
	if res := r.do(0, typeGetID, 0, nil, 4); string(res.data) != "SN-0" || res.status != statusOK {
		t.Errorf("short GET_ID = %q, status %d", res.data, res.status)
	}
	// The serial defaults to the id, zero-padded.
	r2 := newRig(t, Config{Path: newImage(t, make([]byte, diskSize)), ID: "rootfs"})
	if res := r2.do(0, typeGetID, 0, nil, idBytes); !bytes.Equal(res.data, append([]byte("rootfs"), make([]byte, 14)...)) {
		t.Errorf("default serial %q", res.data)
	}
	// cache=unsafe offers no flush, and a flush is unsupported.
	r3 := newRig(t, Config{Path: newImage(t, make([]byte, diskSize)), Cache: CacheUnsafe})
	if r3.dev.Features()&featFlush != 0 {
		t.Error("cache=unsafe offers VIRTIO_BLK_F_FLUSH")
	}
	if res := r3.do(0, typeFlush, 0, nil, 0); res.status != statusUnsupp {
		t.Errorf("flush without the feature: status %d", res.status)
	}
}

func TestBadRequests(t *testing.T) {
	img := pattern(diskSize, 2)
	r := newRig(t, Config{Path: newImage(t, img)})
	const last = diskSize / SectorSize
	for _, c := range []struct {
		name   string
		typ    uint32
		sector uint64
		out    []byte
		in     int
		want   byte
	}{
		{"read past the end", typeIn, last, nil, SectorSize, statusIOErr},
		{"read crossing the end", typeIn, last - 1, nil, 2 * SectorSize, statusIOErr},
		{"read at a huge sector", typeIn, 1 << 62, nil, SectorSize, statusIOErr},
		{"read whose end overflows", typeIn, ^uint64(0), nil, SectorSize, statusIOErr},
		{"write whose end overflows", typeOut, ^uint64(0) - 1, make([]byte, 4*SectorSize), 0, statusIOErr},
		{"write past the end", typeOut, last, make([]byte, SectorSize), 0, statusIOErr},
		{"read of a partial sector", typeIn, 0, nil, 100, statusIOErr},
		{"write of a partial sector", typeOut, 0, make([]byte, 513), 0, statusIOErr},
		{"SCSI command", 2, 0, nil, 0, statusUnsupp},
		{"secure erase", 14, 0, make([]byte, 16), 0, statusUnsupp},
		{"unknown type", 0xdeadbeef, 0, nil, 0, statusUnsupp},
		{"legacy barrier bit", 0x80000001, 0, make([]byte, SectorSize), 0, statusUnsupp},
	} {
		res := r.do(0, c.typ, c.sector, c.out, c.in)
		if res.status != c.want {
			t.Errorf("%s: status %d, want %d", c.name, res.status, c.want)
		}
		if res.status != statusOK && res.used != 1 {
			t.Errorf("%s: used %d, want 1 (the status byte)", c.name, res.used)
		}
	}
	if !bytes.Equal(r.fileBytes(), img) {
		t.Fatal("a failed request changed the file")
	}
	if err := r.rec.Failure(); err != nil {
		t.Fatalf("bad requests marked the device broken: %v", err)
	}
}

// TestMalformedChains: requests that cannot carry a status, or have a
// short header, fail alone; the next good request works.
func TestMalformedChains(t *testing.T) {
	r := newRig(t, Config{Path: newImage(t, make([]byte, diskSize))})
	q := r.qs[0]
	r.write(q.hdr, header(typeIn, 0))
	// No writable byte at all: returned with length 0.
	if _, n := r.chain(0, virtiotest.Buf{Addr: q.hdr, Len: headerSize}); n != 0 {
		t.Errorf("chain without a status byte: used %d", n)
	}
	// A short header: IOERR in the status byte.
	r.write(q.status, []byte{0xee})
	if _, n := r.chain(0, virtiotest.Buf{Addr: q.hdr, Len: 8}, virtiotest.Buf{Addr: q.status, Len: 1, Write: true}); n != 1 {
		t.Errorf("short header: used %d", n)
	}
	if s := virtiotest.Bytes(t, r.mem, q.status, 1)[0]; s != statusIOErr {
		t.Errorf("short header: status %d", s)
	}
	// A buffer outside guest RAM: the chain is malformed, returned empty.
	if _, n := r.chain(0, virtiotest.Buf{Addr: q.hdr, Len: headerSize}, virtiotest.Buf{Addr: memSize + 4096, Len: 512, Write: true},
		virtiotest.Buf{Addr: q.status, Len: 1, Write: true}); n != 0 {
		t.Errorf("chain outside RAM: used %d", n)
	}
	// A status-only chain (no header): IOERR.
	if _, n := r.chain(0, virtiotest.Buf{Addr: q.status, Len: 1, Write: true}); n != 1 {
		t.Errorf("status only: used %d", n)
	}
	if res := r.do(0, typeIn, 0, nil, SectorSize); res.status != statusOK {
		t.Fatalf("good request after malformed ones: status %d", res.status)
	}
	if err := r.rec.Failure(); err != nil {
		t.Fatalf("malformed chains marked the device broken: %v", err)
	}
}

func TestReadOnly(t *testing.T) {
	img := pattern(diskSize, 3)
	r := newRig(t, Config{Path: newImage(t, img), ReadOnly: true})
	f := r.dev.Features()
	if f&featRO == 0 || f&(featDiscard|featWriteZeroes) != 0 {
		t.Errorf("read-only features %#x: want RO, no discard or write-zeroes", f)
	}
	if res := r.do(0, typeOut, 0, make([]byte, SectorSize), 0); res.status != statusIOErr {
		t.Errorf("write to a read-only disk: status %d", res.status)
	}
	if res := r.do(0, typeDiscard, 0, seg(0, 8, 0), 0); res.status != statusUnsupp {
		t.Errorf("discard on a read-only disk: status %d", res.status)
	}
	if res := r.do(0, typeWriteZeroes, 0, seg(0, 8, 0), 0); res.status != statusUnsupp {
		t.Errorf("write-zeroes on a read-only disk: status %d", res.status)
	}
	if res := r.do(0, typeIn, 0, nil, SectorSize); res.status != statusOK || !bytes.Equal(res.data, img[:SectorSize]) {
		t.Errorf("read of a read-only disk: status %d", res.status)
	}
	if res := r.do(0, typeFlush, 0, nil, 0); res.status != statusOK {
		t.Errorf("flush of a read-only disk: status %d", res.status)
	}
	if !bytes.Equal(r.fileBytes(), img) {
		t.Fatal("the read-only image changed")
	}
	// The file itself is opened read-only.
	if err := os.Chmod(r.path, 0o444); err != nil {
		t.Fatal(err)
	}
	dev, err := Open(Config{Path: r.path, ReadOnly: true}, quietLog())
	if err != nil && os.Geteuid() != 0 {
		t.Fatalf("opening a 0444 file read-only: %v", err)
	}
	if dev != nil {
		dev.Close()
	}
}

// allocated returns the bytes the file system has allocated to path.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func TestDiscardAndWriteZeroes(t *testing.T) {
	img := pattern(diskSize, 4)
	r := newRig(t, Config{Path: newImage(t, img)})
	const sectors = diskSize / SectorSize
	before := allocated(t, r.path)

	// Discard the second half in two segments: the file keeps its size
	// and, where the file system can punch holes, loses blocks.
	res := r.do(0, typeDiscard, 0, append(seg(sectors/2, sectors/4, 0), seg(3*sectors/4, sectors/4, 0)...), 0)
	if res.status != statusOK {
		t.Fatalf("discard: status %d", res.status)
	}
	if after := allocated(t, r.path); after > before-diskSize/4 {
		t.Errorf("discard of half the disk freed %d of %d allocated bytes", before-after, before)
	}
	if st, _ := os.Stat(r.path); st.Size() != diskSize {
		t.Fatalf("discard changed the size to %d", st.Size())
	}
	// Write zeroes, with and without unmap.
	for _, flags := range []uint32{0, flagUnmap} {
		res := r.do(0, typeWriteZeroes, 0, seg(8, 16, flags), 0)
		if res.status != statusOK {
			t.Fatalf("write-zeroes flags %d: status %d", flags, res.status)
		}
		got := r.do(0, typeIn, 8, nil, 16*SectorSize)
		if !bytes.Equal(got.data, make([]byte, 16*SectorSize)) {
			t.Fatalf("write-zeroes flags %d left data behind", flags)
		}
		copy(img[8*SectorSize:], pattern(16*SectorSize, 9))
		r.do(0, typeOut, 8, img[8*SectorSize:24*SectorSize], 0)
	}
	// Sectors outside the ranges are untouched.
	if got := r.fileBytes(); !bytes.Equal(got[:8*SectorSize], img[:8*SectorSize]) || !bytes.Equal(got[24*SectorSize:sectors/2*SectorSize], img[24*SectorSize:sectors/2*SectorSize]) {
		t.Fatal("discard or write-zeroes touched other sectors")
	}

	for _, c := range []struct {
		name    string
		typ     uint32
		payload []byte
		want    byte
	}{
		{"discard with the unmap flag", typeDiscard, seg(0, 8, flagUnmap), statusUnsupp},
		{"unknown flag", typeWriteZeroes, seg(0, 8, 2), statusUnsupp},
		{"no segment", typeDiscard, nil, statusIOErr},
		{"partial segment", typeDiscard, seg(0, 8, 0)[:12], statusIOErr},
		{"too many segments", typeDiscard, bytes.Repeat(seg(0, 1, 0), maxDiscardSegments+1), statusIOErr},
		{"segment past the end", typeWriteZeroes, append(seg(0, 8, 0), seg(sectors-4, 8, 0)...), statusIOErr},
		{"segment whose end overflows", typeDiscard, seg(^uint64(0)-2, 8, 0), statusIOErr},
		{"segment above the maximum", typeWriteZeroes, seg(0, maxSegmentSectors+1, 0), statusIOErr},
	} {
		if res := r.do(0, c.typ, 0, c.payload, 0); res.status != c.want {
			t.Errorf("%s: status %d, want %d", c.name, res.status, c.want)
		}
	}
	// The rejected write-zeroes (a good segment, then a bad one) applied
	// nothing.
	if got := r.fileBytes(); !bytes.Equal(got[:8*SectorSize], img[:8*SectorSize]) {
		t.Fatal("a rejected request was partly applied")
	}
}

func TestConfigSpace(t *testing.T) {
	dev, err := Open(Config{Path: newImage(t, make([]byte, diskSize+100)), Queues: 4}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	cfg := make([]byte, 64)
	dev.ReadConfig(0, cfg)
	le := binary.LittleEndian
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"capacity", le.Uint64(cfg[0:]), diskSize / SectorSize},
		{"size_max", uint64(le.Uint32(cfg[8:])), defaultSizeMax},
		{"seg_max", uint64(le.Uint32(cfg[12:])), defaultQueueSize - 2},
		{"blk_size", uint64(le.Uint32(cfg[20:])), 512},
		{"physical_block_exp", uint64(cfg[24]), 3},
		{"min_io_size", uint64(le.Uint16(cfg[26:])), 8},
		{"num_queues", uint64(le.Uint16(cfg[34:])), 4},
		{"max_discard_sectors", uint64(le.Uint32(cfg[36:])), maxSegmentSectors},
		{"max_discard_seg", uint64(le.Uint32(cfg[40:])), maxDiscardSegments},
		{"discard_sector_alignment", uint64(le.Uint32(cfg[44:])), 8},
		{"max_write_zeroes_sectors", uint64(le.Uint32(cfg[48:])), maxSegmentSectors},
		{"max_write_zeroes_seg", uint64(le.Uint32(cfg[52:])), maxDiscardSegments},
		{"write_zeroes_may_unmap", uint64(cfg[56]), 1},
		{"beyond the layout", le.Uint64(cfg[56:]) >> 8, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	want := uint64(virtio.FeatureVersion1 | virtio.FeatureEventIdx | virtio.FeatureIndirectDesc |
		featSizeMax | featSegMax | featBlkSize | featTopology | featFlush | featMQ | featDiscard | featWriteZeroes)
	if f := dev.Features(); f != want {
		t.Errorf("features %#x, want %#x", f, want)
	}
	if n := len(dev.QueueMaxSizes()); n != 4 {
		t.Errorf("%d queues", n)
	}
	// Odd offsets and widths, and far beyond the space, never panic.
	b := make([]byte, 3)
	dev.ReadConfig(1, b)
	if !bytes.Equal(b, cfg[1:4]) {
		t.Errorf("ReadConfig(1, 3) = %x", b)
	}
	dev.ReadConfig(configSize-1, b)
	if b[0] != cfg[configSize-1] || b[1] != 0 || b[2] != 0 {
		t.Errorf("ReadConfig at the end = %x", b)
	}
	dev.ReadConfig(^uint64(0), b)
	dev.ReadConfig(1<<40, make([]byte, 8))
	dev.WriteConfig(0, []byte{1, 2, 3, 4})
	dev.ReadConfig(0, b)
	if !bytes.Equal(b, cfg[:3]) {
		t.Error("WriteConfig changed the read-only configuration")
	}
}

// TestMultiQueue drives four queues at once: each worker serves its own
// ring, and every request lands.
func TestMultiQueue(t *testing.T) {
	r := newRig(t, Config{Path: newImage(t, make([]byte, diskSize)), Queues: 4})
	var wg sync.WaitGroup
	const perQueue = 20 // 3 descriptors each in a table of 64
	for qi := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := r.qs[qi]
			// Each queue owns sectors [qi*512, qi*512+perQueue*8); keep
			// several requests in flight.
			hdrs, bufs, stats := q.drv.Alloc(16*perQueue), q.drv.Alloc(perQueue*4096), q.drv.Alloc(perQueue)
			for i := range perQueue {
				sector := uint64(qi*512 + i*8)
				r.mem.WriteAt(header(typeOut, sector), hdrs+uint64(16*i))
				r.mem.WriteAt(bytes.Repeat([]byte{byte(qi*perQueue + i)}, 4096), bufs+uint64(4096*i))
				q.drv.AddChain(virtiotest.Buf{Addr: hdrs + uint64(16*i), Len: 16},
					virtiotest.Buf{Addr: bufs + uint64(4096*i), Len: 4096},
					virtiotest.Buf{Addr: stats + uint64(i), Len: 1, Write: true})
				if i%8 == 7 {
					q.notify.Signal()
				}
			}
			q.notify.Signal()
		}()
	}
	wg.Wait()
	for qi := range 4 {
		for range perQueue {
			r.wait(qi)
		}
	}
	file := r.fileBytes()
	for qi := range 4 {
		for i := range perQueue {
			off := (qi*512 + i*8) * SectorSize
			if !bytes.Equal(file[off:off+4096], bytes.Repeat([]byte{byte(qi*perQueue + i)}, 4096)) {
				t.Fatalf("queue %d request %d did not land", qi, i)
			}
		}
	}
}

// TestBrokenRingNeedsReset: an impossible available index stops the
// queue's worker and asks for a reset; Reset and a new activation work.
func TestBrokenRingNeedsReset(t *testing.T) {
	r := newRig(t, Config{Path: newImage(t, make([]byte, diskSize))})
	r.qs[0].drv.SetAvailIdx(1000)
	r.qs[0].notify.Signal()
	waitFor(t, func() bool { return r.rec.Failure() != nil })
	if err := r.rec.Failure(); !errors.Is(err, virtio.ErrAvailIndex) {
		t.Errorf("failure %v, want ErrAvailIndex", err)
	}
	r.dev.Reset()
	r.dev.Reset()
	r2 := activate(t, r.dev, r.dev.Features())
	if res := r2.do(0, typeIn, 0, nil, SectorSize); res.status != statusOK {
		t.Errorf("after reset: status %d", res.status)
	}
}

func TestActivateChecks(t *testing.T) {
	r := newRig(t, Config{Path: newImage(t, make([]byte, diskSize)), Queues: 2})
	if err := r.dev.Activate(r.ctx(r.dev.Features())); !errors.Is(err, virtio.ErrAlreadyActive) {
		t.Errorf("second Activate = %v", err)
	}
	r.dev.Reset()
	ctx := r.ctx(r.dev.Features())
	unready, _ := virtio.NewQueue(defaultQueueSize)
	ctx.Queues = []*virtio.Queue{unready, ctx.Queues[1]}
	if err := r.dev.Activate(ctx); !errors.Is(err, virtio.ErrMissingQueue) {
		t.Errorf("Activate without queue 0 = %v", err)
	}
	// Queue 1 alone unready (a one-CPU guest uses one queue): fine.
	ctx = r.ctx(r.dev.Features())
	ctx.Queues = []*virtio.Queue{ctx.Queues[0], unready}
	if err := r.dev.Activate(ctx); err != nil {
		t.Errorf("Activate with queue 1 unready: %v", err)
	}
	if res := r.do(0, typeIn, 0, nil, SectorSize); res.status != statusOK {
		t.Errorf("read on queue 0: status %d", res.status)
	}
}
