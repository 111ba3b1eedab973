//go:build !race

package vsock

const raceEnabled = false
