package main

import (
	"flag"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/rng"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// deviceFlags register the flags of each virtio device kind; each kind's
// flags live in their own file (dev_*.go) and fill in vmm.Devices.
var deviceFlags = []func(fs *flag.FlagSet, d *vmm.Devices){
	blockFlags,
	netFlags,
	consoleFlags,
	vsockFlags,
	balloonFlags,
	rngFlags,
}

func rngFlags(fs *flag.FlagSet, d *vmm.Devices) {
	fs.BoolFunc("rng", "add a virtio-rng device; --rng=rate=BYTES[/s][,burst=BYTES] limits its rate", func(s string) (err error) {
		d.RNG, err = rng.ParseConfig(s)
		return err
	})
}
