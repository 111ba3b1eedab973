// Package mmio is the virtio-mmio transport, version 2 ("modern") only
// (virtio 1.2, section 4.2): a 4 KiB register window on the MMIO bus per
// device. Queue notifications arrive through KVM ioeventfds registered on
// the QueueNotify register (with a fallback for writes that exit to the
// VMM), and interrupts leave through an irqfd bound to the device's GSI.
package mmio

// Register offsets of the virtio-mmio window.
const (
	regMagic             = 0x000
	regVersion           = 0x004
	regDeviceID          = 0x008
	regVendorID          = 0x00c
	regDeviceFeatures    = 0x010
	regDeviceFeaturesSel = 0x014
	regDriverFeatures    = 0x020
	regDriverFeaturesSel = 0x024
	regQueueSel          = 0x030
	regQueueNumMax       = 0x034
	regQueueNum          = 0x038
	regQueueReady        = 0x044
	regQueueNotify       = 0x050
	regInterruptStatus   = 0x060
	regInterruptACK      = 0x064
	regStatus            = 0x070
	regQueueDescLow      = 0x080
	regQueueDescHigh     = 0x084
	regQueueDriverLow    = 0x090
	regQueueDriverHigh   = 0x094
	regQueueDeviceLow    = 0x0a0
	regQueueDeviceHigh   = 0x0a4
	regSHMSel            = 0x0ac
	regSHMLenLow         = 0x0b0
	regSHMLenHigh        = 0x0b4
	regSHMBaseLow        = 0x0b8
	regSHMBaseHigh       = 0x0bc
	regConfigGeneration  = 0x0fc
	regConfig            = 0x100
)

// Identification values.
const (
	// Magic is "virt" in little-endian byte order.
	Magic = 0x74726976
	// Version is the modern virtio-mmio interface.
	Version = 2
	// VendorID is Vireo's virtio vendor ID ("VIRO").
	VendorID = 0x4f524956
	// WindowSize is the size of one device's register window.
	WindowSize = 0x1000
	// NotifyOffset is the QueueNotify register's offset, where ioeventfds
	// are registered.
	NotifyOffset = regQueueNotify
	// ConfigOffset is where the device configuration space starts.
	ConfigOffset = regConfig
)

// Interrupt status bits.
const (
	IntUsedBuffer   = 1 // a queue has new used buffers
	IntConfigChange = 2 // the configuration (or DEVICE_NEEDS_RESET) changed
)
