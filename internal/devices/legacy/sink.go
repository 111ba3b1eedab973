package legacy

// Sink is a Device for ports a guest probes but Vireo does not emulate
// (an unused DMA page register, PCI configuration ports with pci=off):
// reads return all ones, as from an empty bus, and writes are ignored.
// Mapping a Sink keeps such accesses off the unhandled-exit path.
type Sink struct{}

// Read fills data with 0xff.
func (Sink) Read(_ uint64, data []byte) {
	for i := range data {
		data[i] = 0xff
	}
}

// Write ignores data.
func (Sink) Write(uint64, []byte) {}
