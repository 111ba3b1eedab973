package main

import (
	"flag"

	"github.com/vireo-vmm/vireo/internal/vmm"
)

// consoleFlags registers the flags of this device kind (none yet).
func consoleFlags(fs *flag.FlagSet, d *vmm.Devices) {}
