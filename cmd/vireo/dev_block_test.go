package main

import (
	"io"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/blk"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

func TestDiskFlag(t *testing.T) {
	f, err := parseRunFlags([]string{"--kernel", "k", "--disk", "path=/a.img,cache=none,queues=2", "--disk", "/b.qcow2,ro=on,id=base,serial=S1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	disks := f.devices.Disks
	if len(disks) != 2 || disks[0].Path != "/a.img" || disks[0].ID != "disk0" || disks[0].Cache != blk.CacheNone || disks[0].Queues != 2 ||
		disks[1].Path != "/b.qcow2" || !disks[1].ReadOnly || disks[1].ID != "base" || disks[1].Serial != "S1" {
		t.Fatalf("disks %+v", disks)
	}
	var d vmm.Devices
	df := &diskFlag{d: &d}
	if err := df.Set("/x.img,ro=on,format=raw"); err != nil {
		t.Fatal(err)
	}
	if s := df.String(); s != "path=/x.img,ro=on,id=disk0,format=raw" {
		t.Errorf("String() = %q", s)
	}
	for in, want := range map[string]string{
		"/y.img,id=disk0":    `id "disk0" is used twice`,
		"ro=on":              "no path given",
		"/y.img,cache=maybe": "cache=maybe",
		"/y.img,queues=99":   "queues=99",
		"/y.img,color=red":   `unknown option "color"`,
		"/y.img,ro":          `expected key=value, got "ro"`,
	} {
		err := df.Set(in)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Set(%q) = %v, want an error mentioning %q", in, err, want)
		}
	}
	if len(d.Disks) != 1 {
		t.Errorf("failed flags added disks: %+v", d.Disks)
	}
}
