package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/vireo-vmm/vireo/internal/vmm"
)

func TestVsockFlag(t *testing.T) {
	parse := func(args ...string) (*vmm.Devices, error) {
		var d vmm.Devices
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		vsockFlags(fs, &d)
		return &d, fs.Parse(args)
	}
	d, err := parse("--vsock", "cid=7,uds=/run/v.sock")
	if err != nil || d.Vsock == nil || d.Vsock.CID != 7 || d.Vsock.UDSPath != "/run/v.sock" {
		t.Fatalf("--vsock: %+v, %v", d.Vsock, err)
	}
	// The flag package keeps only the message of a Func's error.
	if _, err := parse("--vsock", "cid=7,uds=/a", "--vsock", "cid=8,uds=/b"); err == nil || !strings.Contains(err.Error(), errVsockTwice.Error()) {
		t.Errorf("two --vsock: %v", err)
	}
	for _, c := range []struct{ arg, want string }{
		{"cid=7,path2=/a", `unknown option "path2"`},
		{"cid=x,uds=/a", "cid=x"},
		{"uds=/a", "cid=N is required"},
		{"cid=1,uds=/a", "cid 1"},
	} {
		if _, err := parse("--vsock", c.arg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--vsock %s: %v, want an error mentioning %q", c.arg, err, c.want)
		}
	}
}
