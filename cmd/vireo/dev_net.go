package main

import (
	"flag"

	"github.com/vireo-vmm/vireo/internal/vmm"
)

// netFlags registers the flags of this device kind (none yet).
func netFlags(fs *flag.FlagSet, d *vmm.Devices) {}
