package console

// Feature bits of the console device (virtio 1.2, 5.3.3).
const (
	FeatureSize       = 1 << 0 // VIRTIO_CONSOLE_F_SIZE: cols and rows are valid
	FeatureMultiport  = 1 << 1 // VIRTIO_CONSOLE_F_MULTIPORT: control queues and ports
	FeatureEmergWrite = 1 << 2 // VIRTIO_CONSOLE_F_EMERG_WRITE
)

// Control events (virtio 1.2, 5.3.6.2).
const (
	EventDeviceReady uint16 = 0 // driver: ready (value 1) or failed (0)
	EventPortAdd     uint16 = 1 // device: a port exists
	EventPortRemove  uint16 = 2 // device: a port is gone
	EventPortReady   uint16 = 3 // driver: port added (value 1) or failed (0)
	EventConsolePort uint16 = 4 // device: the port is a console
	EventResize      uint16 = 5 // device: console size changed
	EventPortOpen    uint16 = 6 // both: the sender opened (1) or closed (0) the port
	EventPortName    uint16 = 7 // device: the port's name follows the header
)

// ControlSize is the size of struct virtio_console_control: le32 id,
// le16 event, le16 value.
const ControlSize = 8

// badID is the port id of messages about the whole device.
const badID = 0xffffffff

// Configuration space layout (struct virtio_console_config).
const (
	configCols     = 0 // le16
	configRows     = 2 // le16
	configMaxPorts = 4 // le32
	configEmergWr  = 8 // le32
	configSize     = 12
)

// Queue layout: port 0's receive and transmit queues, the control receive
// and transmit queues, then two queues for each further port.
const (
	ctrlRxQueue = 2
	ctrlTxQueue = 3
)

// rxQueue is the index of port's receive queue (device to driver).
func rxQueue(port int) int {
	if port == 0 {
		return 0
	}
	return 2*port + 2
}

// txQueue is the index of port's transmit queue (driver to device).
func txQueue(port int) int { return rxQueue(port) + 1 }
