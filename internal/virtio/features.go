package virtio

import "fmt"

// DeviceID is a virtio device type (virtio 1.2, section 5).
type DeviceID uint32

// Device types.
const (
	IDNet     DeviceID = 1
	IDBlock   DeviceID = 2
	IDConsole DeviceID = 3
	IDRNG     DeviceID = 4
	IDBalloon DeviceID = 5
	IDSCSI    DeviceID = 8
	ID9P      DeviceID = 9
	IDGPU     DeviceID = 16
	IDInput   DeviceID = 18
	IDVsock   DeviceID = 19
	IDCrypto  DeviceID = 20
	IDIOMMU   DeviceID = 23
	IDMem     DeviceID = 24
	IDFS      DeviceID = 26
	IDPMEM    DeviceID = 27
)

func (id DeviceID) String() string {
	switch id {
	case IDNet:
		return "net"
	case IDBlock:
		return "block"
	case IDConsole:
		return "console"
	case IDRNG:
		return "rng"
	case IDBalloon:
		return "balloon"
	case IDSCSI:
		return "scsi"
	case ID9P:
		return "9p"
	case IDGPU:
		return "gpu"
	case IDInput:
		return "input"
	case IDVsock:
		return "vsock"
	case IDCrypto:
		return "crypto"
	case IDIOMMU:
		return "iommu"
	case IDMem:
		return "mem"
	case IDFS:
		return "fs"
	case IDPMEM:
		return "pmem"
	}
	return fmt.Sprintf("virtio-device-%d", uint32(id))
}

// Reserved feature bits (virtio 1.2, section 6). Bits 0-23 and 50-127
// belong to the device type.
const (
	FeatureIndirectDesc     = 1 << 28 // VIRTIO_F_INDIRECT_DESC
	FeatureEventIdx         = 1 << 29 // VIRTIO_F_EVENT_IDX
	FeatureVersion1         = 1 << 32 // VIRTIO_F_VERSION_1
	FeatureAccessPlatform   = 1 << 33 // VIRTIO_F_ACCESS_PLATFORM
	FeatureRingPacked       = 1 << 34 // VIRTIO_F_RING_PACKED
	FeatureInOrder          = 1 << 35 // VIRTIO_F_IN_ORDER
	FeatureOrderPlatform    = 1 << 36 // VIRTIO_F_ORDER_PLATFORM
	FeatureSRIOV            = 1 << 37 // VIRTIO_F_SR_IOV
	FeatureNotificationData = 1 << 38 // VIRTIO_F_NOTIFICATION_DATA
	FeatureRingReset        = 1 << 40 // VIRTIO_F_RING_RESET
)

// Feature masks for transports.
const (
	// DeviceTypeFeatures are the bits a device type defines for itself.
	DeviceTypeFeatures = 1<<24 - 1 | ^uint64(1<<50-1)
	// RingFeatures are the reserved bits this package implements.
	RingFeatures = FeatureIndirectDesc | FeatureEventIdx | FeatureVersion1
	// OfferableFeatures are the bits a transport may offer on a device's
	// behalf: its own device-type bits and the ring features above.
	OfferableFeatures = DeviceTypeFeatures | RingFeatures
)

// Device status bits (virtio 1.2, section 2.1).
const (
	StatusAcknowledge      = 1
	StatusDriver           = 2
	StatusDriverOK         = 4
	StatusFeaturesOK       = 8
	StatusDeviceNeedsReset = 0x40
	StatusFailed           = 0x80
)

// Descriptor flags of a split virtqueue.
const (
	DescFlagNext     = 1 // VIRTQ_DESC_F_NEXT: the chain continues at Next
	DescFlagWrite    = 2 // VIRTQ_DESC_F_WRITE: the device writes this buffer
	DescFlagIndirect = 4 // VIRTQ_DESC_F_INDIRECT: the buffer is a descriptor table
)

// Ring flags.
const (
	AvailFlagNoInterrupt = 1 // VIRTQ_AVAIL_F_NO_INTERRUPT (ignored with EVENT_IDX)
	UsedFlagNoNotify     = 1 // VIRTQ_USED_F_NO_NOTIFY (ignored with EVENT_IDX)
)

// MaxQueueSize is the largest split virtqueue size (virtio 1.2, 2.7).
const MaxQueueSize = 32768
