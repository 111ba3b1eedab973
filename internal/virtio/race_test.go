//go:build race

package virtio_test

// raceEnabled: the race detector makes some system-call buffers escape,
// so allocation counts are only asserted without it.
const raceEnabled = true
