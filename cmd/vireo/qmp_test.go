package main

import (
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/api/qmp"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

func TestQMPEvent(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		in      vmm.Event
		name    string
		data    any
		dropped bool
	}{
		{in: vmm.Event{Kind: vmm.EventStart}, dropped: true},
		{in: vmm.Event{Kind: vmm.EventStop}, name: "STOP"},
		{in: vmm.Event{Kind: vmm.EventResume}, name: "RESUME"},
		{in: vmm.Event{Kind: vmm.EventPowerdown}, name: "POWERDOWN"},
		{in: vmm.Event{Kind: vmm.EventReset, Reason: "host-qmp-system-reset"}, name: "RESET", data: qmp.ShutdownData{Reason: "host-qmp-system-reset"}},
		{in: vmm.Event{Kind: vmm.EventReset, Guest: true, Reason: "i8042 reset"}, name: "RESET", data: qmp.ShutdownData{Guest: true, Reason: "guest-reset"}},
		{in: vmm.Event{Kind: vmm.EventShutdown, Guest: true, Reason: "guest-shutdown"}, name: "SHUTDOWN", data: qmp.ShutdownData{Guest: true, Reason: "guest-shutdown"}},
		{in: vmm.Event{Kind: vmm.EventShutdown, Reason: "host-signal"}, name: "SHUTDOWN", data: qmp.ShutdownData{Reason: "host-signal"}},
		{in: vmm.Event{Kind: vmm.EventShutdown, Reason: "host-qmp-quit"}, name: "SHUTDOWN", data: qmp.ShutdownData{Reason: "host-qmp-quit"}},
		{in: vmm.Event{Kind: vmm.EventShutdown, Guest: true, Reason: "guest-reset"}, name: "SHUTDOWN", data: qmp.ShutdownData{Guest: true, Reason: "guest-reset"}},
	} {
		tc.in.Time = now
		got, ok := qmpEvent(tc.in)
		if ok == tc.dropped {
			t.Errorf("%+v: sent=%v", tc.in, ok)
			continue
		}
		if !ok {
			continue
		}
		if got.Name != tc.name || got.Data != tc.data || !got.Time.Equal(now) {
			t.Errorf("%+v -> %+v, want %s %+v", tc.in, got, tc.name, tc.data)
		}
	}
}

func TestQMPFlag(t *testing.T) {
	f, err := parseRunFlags([]string{"--qmp", "unix:/tmp/a.sock,server=on,wait=off", "--qmp", "tcp:127.0.0.1:4444"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.qmp) != 2 || f.qmp[0].Network != "unix" || f.qmp[1].Address != "127.0.0.1:4444" {
		t.Errorf("--qmp parsed as %+v", f.qmp)
	}
	if _, err := parseRunFlags([]string{"--qmp", "stdio"}, nil); err == nil {
		t.Error("--qmp stdio accepted")
	}
}
