package main

import (
	"flag"

	"github.com/vireo-vmm/vireo/internal/vmm"
)

// vsockFlags registers the flags of this device kind (none yet).
func vsockFlags(fs *flag.FlagSet, d *vmm.Devices) {}
