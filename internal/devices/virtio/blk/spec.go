package blk

// Wire constants of the virtio block device (virtio 1.2, section 5.2).

// Feature bits.
const (
	featSizeMax     = 1 << 1  // VIRTIO_BLK_F_SIZE_MAX
	featSegMax      = 1 << 2  // VIRTIO_BLK_F_SEG_MAX
	featRO          = 1 << 5  // VIRTIO_BLK_F_RO
	featBlkSize     = 1 << 6  // VIRTIO_BLK_F_BLK_SIZE
	featFlush       = 1 << 9  // VIRTIO_BLK_F_FLUSH
	featTopology    = 1 << 10 // VIRTIO_BLK_F_TOPOLOGY
	featMQ          = 1 << 12 // VIRTIO_BLK_F_MQ
	featDiscard     = 1 << 13 // VIRTIO_BLK_F_DISCARD
	featWriteZeroes = 1 << 14 // VIRTIO_BLK_F_WRITE_ZEROES
)

// Request types (struct virtio_blk_outhdr.type).
const (
	typeIn          = 0  // VIRTIO_BLK_T_IN: read
	typeOut         = 1  // VIRTIO_BLK_T_OUT: write
	typeFlush       = 4  // VIRTIO_BLK_T_FLUSH
	typeGetID       = 8  // VIRTIO_BLK_T_GET_ID
	typeDiscard     = 11 // VIRTIO_BLK_T_DISCARD
	typeWriteZeroes = 13 // VIRTIO_BLK_T_WRITE_ZEROES
)

// Status values, the last byte of every request.
const (
	statusOK     = 0 // VIRTIO_BLK_S_OK
	statusIOErr  = 1 // VIRTIO_BLK_S_IOERR
	statusUnsupp = 2 // VIRTIO_BLK_S_UNSUPP
)

// Request layout.
const (
	// SectorSize is the unit of the sector field and of capacity.
	SectorSize  = 512
	sectorShift = 9
	headerSize  = 16 // le32 type, le32 reserved (ioprio), le64 sector
	segmentSize = 16 // struct virtio_blk_discard_write_zeroes
	idBytes     = 20 // VIRTIO_BLK_ID_BYTES
	// flagUnmap is VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP in a segment.
	flagUnmap = 1
)

// Configuration space offsets (struct virtio_blk_config).
const (
	cfgCapacity         = 0
	cfgSizeMax          = 8
	cfgSegMax           = 12
	cfgBlkSize          = 20
	cfgPhysBlockExp     = 24
	cfgAlignmentOffset  = 25
	cfgMinIOSize        = 26
	cfgOptIOSize        = 28
	cfgNumQueues        = 34
	cfgMaxDiscardSect   = 36
	cfgMaxDiscardSeg    = 40
	cfgDiscardAlign     = 44
	cfgMaxZeroesSect    = 48
	cfgMaxZeroesSeg     = 52
	cfgZeroesMayUnmap   = 56
	configSize          = 60 // through write_zeroes_may_unmap and its padding
	maxDiscardSegments  = 32
	maxSegmentSectors   = 1 << 22 // 2 GiB per discard or write-zeroes segment
	defaultSizeMax      = 1 << 20 // bytes per data descriptor the driver should use at most
	defaultQueueSize    = 256
	descriptorsReserved = 2 // header and status
)
