//go:build race

package vsock

// raceEnabled: the race detector makes some system-call buffers escape,
// so allocation counts are only asserted without it.
const raceEnabled = true
