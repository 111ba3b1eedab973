package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/devices/virtio/balloon"
	"github.com/vireo-vmm/vireo/internal/vmm"
)

func TestBalloonFlag(t *testing.T) {
	for in, want := range map[string]*balloon.Config{
		"--balloon": {},
		"--balloon=deflate-on-oom=on,stats=5,free-page-reporting=on": {DeflateOnOOM: true, StatsInterval: 5 * time.Second, FreePageReporting: true},
		"--balloon=off": nil,
	} {
		f, err := parseRunFlags([]string{"--kernel", "k", in}, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := f.devices.Balloon; (got == nil) != (want == nil) || got != nil && *got != *want {
			t.Errorf("%s: balloon %+v, want %+v", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"--balloon=stats=forever": "stats=forever",
		"--balloon=size=1G":       `unknown option "size"`,
	} {
		_, err := parseRunFlags([]string{"--kernel", "k", in}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want an error mentioning %q", in, err, want)
		}
	}
}

func TestBalloonChangeEvent(t *testing.T) {
	ev, ok := qmpEvent(vmm.Event{Kind: vmm.EventBalloonChange, Time: time.Unix(5, 0), Guest: true, BalloonActual: 192 << 20})
	if !ok || ev.Name != "BALLOON_CHANGE" {
		t.Fatalf("qmpEvent = %+v, %v", ev, ok)
	}
	if b, _ := json.Marshal(ev.Data); string(b) != `{"actual":201326592}` {
		t.Errorf("BALLOON_CHANGE data %s", b)
	}
}
