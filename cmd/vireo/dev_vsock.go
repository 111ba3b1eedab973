package main

import (
	"errors"
	"flag"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/vsock"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// errVsockTwice reports a second --vsock: a guest has one vsock device.
var errVsockTwice = errors.New("only one --vsock device is supported")

// vsockFlags registers --vsock cid=N,uds=PATH.
func vsockFlags(fs *flag.FlagSet, d *vmm.Devices) {
	fs.Func("vsock", "add a virtio-vsock device: cid=N,uds=PATH (host programs connect to PATH and send \"CONNECT <port>\\n\"; guest connections to host port P go to PATH_P)", func(s string) error {
		if d.Vsock != nil {
			return errVsockTwice
		}
		c, err := vsock.ParseConfig(s)
		if err != nil {
			return err
		}
		d.Vsock = &c
		return nil
	})
}
