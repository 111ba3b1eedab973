//go:build race

package mmio

// raceEnabled: the race detector makes some system-call buffers escape,
// so allocation counts are only asserted without it.
const raceEnabled = true
