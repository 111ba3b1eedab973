package net

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Feature bits of the network device (virtio 1.2, 5.1.3).
const (
	FeatureCSUM              = 1 << 0  // VIRTIO_NET_F_CSUM: the device completes partial checksums
	FeatureGuestCSUM         = 1 << 1  // VIRTIO_NET_F_GUEST_CSUM: the driver accepts partial checksums
	FeatureCtrlGuestOffloads = 1 << 2  // VIRTIO_NET_F_CTRL_GUEST_OFFLOADS
	FeatureMTU               = 1 << 3  // VIRTIO_NET_F_MTU
	FeatureMAC               = 1 << 5  // VIRTIO_NET_F_MAC
	FeatureGuestTSO4         = 1 << 7  // VIRTIO_NET_F_GUEST_TSO4
	FeatureGuestTSO6         = 1 << 8  // VIRTIO_NET_F_GUEST_TSO6
	FeatureGuestECN          = 1 << 9  // VIRTIO_NET_F_GUEST_ECN
	FeatureGuestUFO          = 1 << 10 // VIRTIO_NET_F_GUEST_UFO
	FeatureHostTSO4          = 1 << 11 // VIRTIO_NET_F_HOST_TSO4
	FeatureHostTSO6          = 1 << 12 // VIRTIO_NET_F_HOST_TSO6
	FeatureHostECN           = 1 << 13 // VIRTIO_NET_F_HOST_ECN
	FeatureHostUFO           = 1 << 14 // VIRTIO_NET_F_HOST_UFO
	FeatureMrgRxbuf          = 1 << 15 // VIRTIO_NET_F_MRG_RXBUF
	FeatureStatus            = 1 << 16 // VIRTIO_NET_F_STATUS
	FeatureCtrlVQ            = 1 << 17 // VIRTIO_NET_F_CTRL_VQ
	FeatureCtrlRx            = 1 << 18 // VIRTIO_NET_F_CTRL_RX
	FeatureCtrlVLAN          = 1 << 19 // VIRTIO_NET_F_CTRL_VLAN
	FeatureGuestAnnounce     = 1 << 21 // VIRTIO_NET_F_GUEST_ANNOUNCE
	FeatureMQ                = 1 << 22 // VIRTIO_NET_F_MQ
	FeatureCtrlMACAddr       = 1 << 23 // VIRTIO_NET_F_CTRL_MAC_ADDR
)

// guestOffloads are the features that describe what the driver accepts
// on receive; VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET may change them later.
const guestOffloads = FeatureGuestCSUM | FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureGuestECN | FeatureGuestUFO

// Frame and header sizes.
const (
	// hdrLen is struct virtio_net_hdr_v1: with VIRTIO_F_VERSION_1 the
	// header always carries num_buffers, MRG_RXBUF or not.
	hdrLen        = 12
	ethHeaderLen  = 14
	vlanHeaderLen = 4
	// maxFrameLen is the largest frame a TAP carries: a 64 KiB IP packet
	// (TSO) behind an Ethernet and a VLAN header.
	maxFrameLen = 65535 + ethHeaderLen + vlanHeaderLen
	// maxPacketLen is a header plus the largest frame.
	maxPacketLen = hdrLen + maxFrameLen
)

// Header flags and GSO types (struct virtio_net_hdr).
const (
	hdrNeedsCSUM = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	hdrDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID
	hdrRSCInfo   = 4 // VIRTIO_NET_HDR_F_RSC_INFO

	gsoNone  = 0    // VIRTIO_NET_HDR_GSO_NONE
	gsoTCPv4 = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	gsoUDP   = 3    // VIRTIO_NET_HDR_GSO_UDP
	gsoTCPv6 = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	gsoUDPL4 = 5    // VIRTIO_NET_HDR_GSO_UDP_L4
	gsoECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN
)

// offset of num_buffers in the header.
const numBuffersOff = 10

// Header errors: a packet with a bad header is dropped.
var (
	ErrHeader    = errors.New("net: invalid virtio-net header")
	ErrFrameSize = errors.New("net: frame size out of range")
)

// header is a decoded struct virtio_net_hdr_v1 (little-endian fields).
type header struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
	numBuffers uint16
}

// decodeHeader decodes the first hdrLen bytes of b (len(b) >= hdrLen).
func decodeHeader(b []byte) header {
	return header{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     binary.LittleEndian.Uint16(b[2:]),
		gsoSize:    binary.LittleEndian.Uint16(b[4:]),
		csumStart:  binary.LittleEndian.Uint16(b[6:]),
		csumOffset: binary.LittleEndian.Uint16(b[8:]),
		numBuffers: binary.LittleEndian.Uint16(b[10:]),
	}
}

// encode writes the header into the first hdrLen bytes of b.
func (h header) encode(b []byte) {
	b[0], b[1] = h.flags, h.gsoType
	binary.LittleEndian.PutUint16(b[2:], h.hdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.gsoSize)
	binary.LittleEndian.PutUint16(b[6:], h.csumStart)
	binary.LittleEndian.PutUint16(b[8:], h.csumOffset)
	binary.LittleEndian.PutUint16(b[10:], h.numBuffers)
}

// checkFrame bounds a frame length.
func checkFrame(n int) error {
	if n < ethHeaderLen || n > maxFrameLen {
		return fmt.Errorf("%w: %d bytes (want %d to %d)", ErrFrameSize, n, ethHeaderLen, maxFrameLen)
	}
	return nil
}

// checkCSUM validates the partial-checksum fields against the frame.
func (h header) checkCSUM(frameLen int) error {
	if int(h.csumStart)+int(h.csumOffset)+2 > frameLen {
		return fmt.Errorf("%w: checksum at %d+%d beyond a %d-byte frame", ErrHeader, h.csumStart, h.csumOffset, frameLen)
	}
	return nil
}

// checkTx validates the header of a packet the driver sent, of frameLen
// bytes after the header, against the negotiated features: the host
// kernel would reject (or worse, trust) anything else.
func (h header) checkTx(frameLen int, features uint64) error {
	if err := checkFrame(frameLen); err != nil {
		return err
	}
	if h.flags&^hdrNeedsCSUM != 0 {
		return fmt.Errorf("%w: flags %#x on transmit", ErrHeader, h.flags)
	}
	if h.flags&hdrNeedsCSUM != 0 {
		if features&FeatureCSUM == 0 {
			return fmt.Errorf("%w: NEEDS_CSUM without VIRTIO_NET_F_CSUM", ErrHeader)
		}
		if err := h.checkCSUM(frameLen); err != nil {
			return err
		}
	}
	if h.gsoType == gsoNone {
		return nil
	}
	var need uint64
	switch h.gsoType {
	case gsoTCPv4:
		need = FeatureHostTSO4
	case gsoTCPv6:
		need = FeatureHostTSO6
	case gsoTCPv4 | gsoECN, gsoTCPv6 | gsoECN:
		need = FeatureHostECN
	case gsoUDP:
		need = FeatureHostUFO
	default:
		return fmt.Errorf("%w: GSO type %#x", ErrHeader, h.gsoType)
	}
	switch {
	case features&need == 0:
		return fmt.Errorf("%w: GSO type %#x was not negotiated", ErrHeader, h.gsoType)
	case h.flags&hdrNeedsCSUM == 0:
		return fmt.Errorf("%w: GSO without NEEDS_CSUM", ErrHeader)
	case h.gsoSize == 0:
		return fmt.Errorf("%w: GSO with a zero segment size", ErrHeader)
	case int(h.hdrLen) > frameLen:
		return fmt.Errorf("%w: header length %d beyond a %d-byte frame", ErrHeader, h.hdrLen, frameLen)
	}
	return nil
}

// fixRx validates the header the host kernel put in front of a received
// packet of frameLen bytes against what the driver accepts (features,
// after any GUEST_OFFLOADS change), clearing flags it may not see.
func (h *header) fixRx(frameLen int, features uint64) error {
	if err := checkFrame(frameLen); err != nil {
		return err
	}
	if features&FeatureGuestCSUM == 0 {
		if h.flags&hdrNeedsCSUM != 0 {
			return fmt.Errorf("%w: a partial checksum for a driver without GUEST_CSUM", ErrHeader)
		}
		h.flags &^= hdrDataValid
	}
	if h.flags&hdrNeedsCSUM != 0 {
		if err := h.checkCSUM(frameLen); err != nil {
			return err
		}
	}
	h.flags &= hdrNeedsCSUM | hdrDataValid
	var need uint64
	switch h.gsoType {
	case gsoNone:
		return nil
	case gsoTCPv4:
		need = FeatureGuestTSO4
	case gsoTCPv6:
		need = FeatureGuestTSO6
	case gsoTCPv4 | gsoECN, gsoTCPv6 | gsoECN:
		need = FeatureGuestECN
	case gsoUDP:
		need = FeatureGuestUFO
	default:
		return fmt.Errorf("%w: received GSO type %#x", ErrHeader, h.gsoType)
	}
	if features&need == 0 {
		return fmt.Errorf("%w: received GSO type %#x the driver did not accept", ErrHeader, h.gsoType)
	}
	return nil
}
