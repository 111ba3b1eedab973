package virtio

// Snapshotter is implemented by devices whose state is more than their
// configuration and their queues (which the transport saves): a balloon's
// actual size, a network device's link state, ... The state is plain data
// encoded by the device (JSON is the convention).
type Snapshotter interface {
	SaveState() ([]byte, error)
	RestoreState(data []byte) error
}
