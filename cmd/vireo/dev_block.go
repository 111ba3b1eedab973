package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/blk"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

// blockFlags registers --disk (repeatable).
func blockFlags(fs *flag.FlagSet, d *vmm.Devices) {
	fs.Var(&diskFlag{d: d}, "disk", "add a virtio-blk disk (vda, vdb, ... in order): "+
		"path=FILE[,ro=on][,id=NAME][,serial=STR][,cache=writeback|none|unsafe][,queues=N][,format=raw|qcow2] "+
		"(qcow2 images need ro=on); repeatable")
}

// diskFlag is --disk: each use adds one disk.
type diskFlag struct{ d *vmm.Devices }

func (f *diskFlag) String() string {
	if f.d == nil {
		return ""
	}
	specs := make([]string, 0, len(f.d.Disks))
	for _, c := range f.d.Disks {
		s := "path=" + c.Path
		if c.ReadOnly {
			s += ",ro=on"
		}
		for _, kv := range [][2]string{{"id", c.ID}, {"serial", c.Serial}, {"cache", string(c.Cache)}, {"format", string(c.Format)}} {
			if kv[1] != "" {
				s += "," + kv[0] + "=" + kv[1]
			}
		}
		if c.Queues > 1 {
			s += ",queues=" + strconv.Itoa(c.Queues)
		}
		specs = append(specs, s)
	}
	return strings.Join(specs, " ")
}

func (f *diskFlag) Set(s string) error {
	cfg, err := blk.ParseConfig(s)
	if err != nil {
		return err
	}
	if cfg.ID == "" {
		cfg.ID = fmt.Sprintf("disk%d", len(f.d.Disks))
	}
	for _, o := range f.d.Disks {
		if o.ID == cfg.ID {
			return fmt.Errorf("--disk: id %q is used twice", cfg.ID)
		}
	}
	f.d.Disks = append(f.d.Disks, vmm.DiskConfig{Config: cfg})
	return nil
}
