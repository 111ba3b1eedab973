package main

import (
	"flag"

	"github.com/vireo-vmm/vireo/internal/vmm"
)

// balloonFlags registers the flags of this device kind (none yet).
func balloonFlags(fs *flag.FlagSet, d *vmm.Devices) {}
