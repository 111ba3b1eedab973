package main

import (
	"flag"

	"github.com/vireo-vmm/vireo/internal/vmm"
)

// blockFlags registers the flags of this device kind (none yet).
func blockFlags(fs *flag.FlagSet, d *vmm.Devices) {}
