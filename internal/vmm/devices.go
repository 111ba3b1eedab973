package vmm

// Devices lists a machine's virtio devices. Each kind's configuration type
// and setup live in its own file (dev_block.go, dev_net.go, ...).
type Devices struct {
	// Disks are virtio-blk devices, in guest order (vda, vdb, ...).
	Disks []DiskConfig
	// Nets are virtio-net devices over TAP.
	Nets []NetConfig
	// VirtioConsole moves the console from the UART to a virtio-console
	// (hvc0).
	VirtioConsole bool
	// Channels are named virtio-console ports exposed as host sockets.
	Channels []ChannelConfig
	// Vsock, when set, adds a virtio-vsock device.
	Vsock *VsockConfig
	// Balloon, when set, adds a virtio-balloon device.
	Balloon *BalloonConfig
	// RNG, when set, adds a virtio-rng device.
	RNG *RNGConfig
}
