package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	qlog "github.com/lima-vm/go-qcow2reader/log"

	"github.com/lima-vm/go-qcow2reader/image/qcow2"
)

// qcow2 header fields this package checks before the reader sees the
// image (big-endian; qcow2 specification, "Header").
const (
	qcow2Magic         = "QFI\xfb"
	qcow2HeaderV2      = 72
	qcow2HeaderV3      = 104
	qcow2MinCluster    = 9
	qcow2MaxCluster    = 21       // 2 MiB clusters, as QEMU
	qcow2MaxL1Bytes    = 32 << 20 // QEMU's QCOW_MAX_L1_SIZE
	qcow2MaxSize       = 1 << 56  // virtual sizes beyond this are refused
	qcow2IncompatDirty = 1 << 0
	qcow2IncompatComp  = 1 << 3 // compression type field is valid
)

// qcow2Header is the part of the header that is validated here.
type qcow2Header struct {
	version       uint32
	backingOffset uint64
	clusterBits   uint32
	size          uint64
	cryptMethod   uint32
	l1Size        uint32
	l1Offset      uint64
	incompatible  uint64
	headerLength  uint32
}

// hasQcow2Magic reports whether f starts with the qcow2 magic.
func hasQcow2Magic(f *os.File) (bool, error) {
	var m [4]byte
	n, err := f.ReadAt(m[:], 0)
	if n < len(m) {
		if err == io.EOF {
			return false, nil
		}
		return false, err
	}
	return string(m[:]) == qcow2Magic, nil
}

// parseQcow2Header decodes and checks the header at the start of b
// against a file of fileSize bytes: what the reader does not check or
// what this package does not support (backing files, encryption, external
// data files, extended L2 entries, images marked corrupt) is refused.
func parseQcow2Header(b []byte, fileSize int64) (qcow2Header, error) {
	var h qcow2Header
	if len(b) < qcow2HeaderV2 || string(b[:4]) != qcow2Magic {
		return h, fmt.Errorf("%w: no qcow2 header", ErrQcow2)
	}
	be := binary.BigEndian
	h.version = be.Uint32(b[4:])
	h.backingOffset = be.Uint64(b[8:])
	h.clusterBits = be.Uint32(b[20:])
	h.size = be.Uint64(b[24:])
	h.cryptMethod = be.Uint32(b[32:])
	h.l1Size = be.Uint32(b[36:])
	h.l1Offset = be.Uint64(b[40:])
	switch h.version {
	case 2:
		h.headerLength = qcow2HeaderV2
	case 3:
		if len(b) < qcow2HeaderV3 {
			return h, fmt.Errorf("%w: truncated version 3 header", ErrQcow2)
		}
		h.incompatible = be.Uint64(b[72:])
		h.headerLength = be.Uint32(b[100:])
	default:
		return h, fmt.Errorf("%w: version %d (want 2 or 3)", ErrQcow2, h.version)
	}
	if h.backingOffset != 0 {
		return h, fmt.Errorf("%w: backing files are not supported (flatten it with qemu-img convert)", ErrQcow2)
	}
	if h.clusterBits < qcow2MinCluster || h.clusterBits > qcow2MaxCluster {
		return h, fmt.Errorf("%w: cluster_bits %d (want %d to %d)", ErrQcow2, h.clusterBits, qcow2MinCluster, qcow2MaxCluster)
	}
	cluster := uint64(1) << h.clusterBits
	if h.cryptMethod != 0 {
		return h, fmt.Errorf("%w: encrypted images are not supported", ErrQcow2)
	}
	if h.version == 3 {
		if h.headerLength < qcow2HeaderV3 || uint64(h.headerLength) > cluster {
			return h, fmt.Errorf("%w: header_length %d", ErrQcow2, h.headerLength)
		}
		if bad := h.incompatible &^ (qcow2IncompatDirty | qcow2IncompatComp); bad != 0 {
			return h, fmt.Errorf("%w: incompatible features %#x (corrupt, external data file or extended L2 entries)", ErrQcow2, bad)
		}
	}
	if h.size > qcow2MaxSize {
		return h, fmt.Errorf("%w: virtual size %d is too large", ErrQcow2, h.size)
	}
	// One L1 entry maps one L2 table: cluster/8 clusters.
	perL1 := cluster * (cluster / 8)
	need := (h.size + perL1 - 1) / perL1
	l1Bytes := uint64(h.l1Size) * 8
	switch {
	case h.size == 0:
		return h, fmt.Errorf("%w: virtual size 0", ErrQcow2)
	case uint64(h.l1Size) < need:
		return h, fmt.Errorf("%w: L1 table of %d entries cannot map %d bytes", ErrQcow2, h.l1Size, h.size)
	case l1Bytes > qcow2MaxL1Bytes:
		return h, fmt.Errorf("%w: L1 table of %d bytes is too large", ErrQcow2, l1Bytes)
	case h.l1Offset == 0 || h.l1Offset%cluster != 0:
		return h, fmt.Errorf("%w: L1 table offset %#x is not cluster-aligned", ErrQcow2, h.l1Offset)
	case fileSize < 0 || h.l1Offset > uint64(fileSize) || l1Bytes > uint64(fileSize)-h.l1Offset:
		return h, fmt.Errorf("%w: L1 table %#x+%#x lies beyond the end of the file", ErrQcow2, h.l1Offset, l1Bytes)
	}
	return h, nil
}

// qcow2Image serves reads from a qcow2 image through go-qcow2reader;
// writes fail.
type qcow2Image struct {
	raw  *rawFile
	img  *qcow2.Qcow2
	size int64
	mu   sync.Mutex // serialises the reader, which is not documented as concurrency-safe
}

var routeQcow2Warnings sync.Once

// openQcow2 checks the header of the image open in r and opens it.
func openQcow2(r *rawFile, warn func(string, ...any)) (q *qcow2Image, err error) {
	routeQcow2Warnings.Do(func() {
		qlog.SetWarnFunc(func(s string) { slog.Warn("qcow2 reader: " + s) })
	})
	var hdr [qcow2HeaderV3]byte
	n, err := r.buf.ReadAt(hdr[:], 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("%w: reading the header: %w", ErrQcow2, err)
	}
	h, err := parseQcow2Header(hdr[:n], r.size)
	if err != nil {
		return nil, err
	}
	if h.incompatible&qcow2IncompatDirty != 0 {
		warn("qcow2: the image was not closed cleanly (dirty bit set); reading it anyway", "path", r.f.Name())
	}
	defer func() {
		if p := recover(); p != nil {
			q, err = nil, fmt.Errorf("%w: the reader failed: %v", ErrQcow2, p)
		}
	}()
	img, err := qcow2.Open(r.buf, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQcow2, err)
	}
	if err := img.Readable(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQcow2, err)
	}
	return &qcow2Image{raw: r, img: img, size: int64(h.size)}, nil
}

func (q *qcow2Image) readv(_ *iovScratch, bufs [][]byte, off int64) error {
	for _, b := range bufs {
		if err := q.readAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}

// errQcow2Short reports a read the image could not satisfy in full.
var errQcow2Short = errors.New("qcow2: short read")

// readAt reads b whole at off; a panic in the reader becomes an error.
func (q *qcow2Image) readAt(b []byte, off int64) (err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: the reader failed: %v", ErrQcow2, p)
		}
	}()
	n, err := q.img.ReadAt(b, off)
	if n == len(b) && (err == nil || err == io.EOF) {
		return nil
	}
	if err == nil || err == io.EOF {
		return errQcow2Short
	}
	return err
}

func (q *qcow2Image) writev(*iovScratch, [][]byte, int64) error { return errReadOnly }
func (q *qcow2Image) flush() error                              { return nil }
func (q *qcow2Image) discard(int64, int64) error                { return errReadOnly }
func (q *qcow2Image) writeZeroes(int64, int64, bool) error      { return errReadOnly }
func (q *qcow2Image) close() error                              { return q.raw.close() }
