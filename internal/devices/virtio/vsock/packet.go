package vsock

import "encoding/binary"

// Addresses and limits of the vsock protocol (virtio 1.2, section 5.10).
const (
	// HostCID is the address of the host: the only peer this device
	// routes guest packets to.
	HostCID = 2
	// MinGuestCID is the lowest CID a guest may have: 0 and 1 are
	// reserved, 2 is the host.
	MinGuestCID = 3
	// MaxGuestCID is the highest: CIDs are 32-bit in sockaddr_vm and
	// 0xffffffff is VMADDR_CID_ANY.
	MaxGuestCID = 1<<32 - 2

	// hdrSize is the size of struct virtio_vsock_hdr.
	hdrSize = 44
	// maxPayload is the largest payload of one packet, in either
	// direction (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
	maxPayload = 64 << 10
)

// Packet types.
const typeStream = 1

// Operations (the op field).
const (
	opInvalid       = 0
	opRequest       = 1
	opResponse      = 2
	opRST           = 3
	opShutdown      = 4
	opRW            = 5
	opCreditUpdate  = 6
	opCreditRequest = 7
)

// Flags of a SHUTDOWN packet: what its sender will no longer do.
const (
	shutdownRcv  = 1
	shutdownSend = 2
	shutdownBoth = shutdownRcv | shutdownSend
)

// header is struct virtio_vsock_hdr: little-endian and packed, 44 bytes.
type header struct {
	srcCID   uint64
	dstCID   uint64
	srcPort  uint32
	dstPort  uint32
	len      uint32
	typ      uint16
	op       uint16
	flags    uint32
	bufAlloc uint32
	fwdCnt   uint32
}

// decode fills h from the first hdrSize bytes of b.
func (h *header) decode(b *[hdrSize]byte) {
	h.srcCID = binary.LittleEndian.Uint64(b[0:])
	h.dstCID = binary.LittleEndian.Uint64(b[8:])
	h.srcPort = binary.LittleEndian.Uint32(b[16:])
	h.dstPort = binary.LittleEndian.Uint32(b[20:])
	h.len = binary.LittleEndian.Uint32(b[24:])
	h.typ = binary.LittleEndian.Uint16(b[28:])
	h.op = binary.LittleEndian.Uint16(b[30:])
	h.flags = binary.LittleEndian.Uint32(b[32:])
	h.bufAlloc = binary.LittleEndian.Uint32(b[36:])
	h.fwdCnt = binary.LittleEndian.Uint32(b[40:])
}

// encode writes h into b.
func (h *header) encode(b *[hdrSize]byte) {
	binary.LittleEndian.PutUint64(b[0:], h.srcCID)
	binary.LittleEndian.PutUint64(b[8:], h.dstCID)
	binary.LittleEndian.PutUint32(b[16:], h.srcPort)
	binary.LittleEndian.PutUint32(b[20:], h.dstPort)
	binary.LittleEndian.PutUint32(b[24:], h.len)
	binary.LittleEndian.PutUint16(b[28:], h.typ)
	binary.LittleEndian.PutUint16(b[30:], h.op)
	binary.LittleEndian.PutUint32(b[32:], h.flags)
	binary.LittleEndian.PutUint32(b[36:], h.bufAlloc)
	binary.LittleEndian.PutUint32(b[40:], h.fwdCnt)
}

// opName names an operation for logs.
func opName(op uint16) string {
	switch op {
	case opRequest:
		return "REQUEST"
	case opResponse:
		return "RESPONSE"
	case opRST:
		return "RST"
	case opShutdown:
		return "SHUTDOWN"
	case opRW:
		return "RW"
	case opCreditUpdate:
		return "CREDIT_UPDATE"
	case opCreditRequest:
		return "CREDIT_REQUEST"
	}
	return "INVALID"
}
