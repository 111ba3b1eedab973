package main

import (
	"flag"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/balloon"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// balloonFlags registers --balloon.
func balloonFlags(fs *flag.FlagSet, d *vmm.Devices) {
	fs.Var(balloonFlag{d}, "balloon", "add a virtio-balloon device, driven by QMP balloon and query-balloon; "+
		"--balloon=deflate-on-oom=on,stats=SECONDS,free-page-reporting=on sets its options")
}

// balloonFlag is --balloon, which may be given without a value.
type balloonFlag struct{ d *vmm.Devices }

func (f balloonFlag) String() string   { return "" }
func (f balloonFlag) IsBoolFlag() bool { return true }

func (f balloonFlag) Set(s string) (err error) {
	f.d.Balloon, err = balloon.ParseConfig(s)
	return err
}

// balloonChangeData is the data of QMP's BALLOON_CHANGE event: the
// guest's memory outside the balloon, in bytes.
type balloonChangeData struct {
	Actual uint64 `json:"actual"`
}
