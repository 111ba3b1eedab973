package harness

import (
	"context"
	"fmt"
	"time"
)

// TimeToMarker runs argv until marker appears on its console and returns
// the time from just before exec to the read that completed the marker.
// After, when not nil, is called once the marker is seen, while the
// process still runs; its error fails the boot. The process group is
// killed on every path.
func TimeToMarker(ctx context.Context, name string, argv []string, marker string, timeout time.Duration, after func(*Proc) error) (time.Duration, error) {
	p, err := Start(name, argv)
	if err != nil {
		return 0, err
	}
	defer p.Kill()
	m, err := p.WaitFor(ctx, marker, 0, timeout)
	if err != nil {
		return 0, err
	}
	if after != nil {
		if err := after(p); err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	return m.At.Sub(p.Started), nil
}
