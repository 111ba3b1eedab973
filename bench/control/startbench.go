package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/vireo-vmm/vireo/bench/internal/harness"
)

// startResults are the measurements of the start benchmark, one per run,
// in milliseconds.
type startResults struct {
	// Through the API: exec to the socket answering, the two
	// configuration requests, the InstanceStart request to its reply and
	// to the marker, and exec to the marker.
	APIReady, Configure, StartReply, APIToMarker, APIExecToMarker []float64
	// Through the command line: exec to the marker.
	CLIToMarker []float64
	// FirstWay names which way went first in each run: "API" or "CLI".
	FirstWay []string
	// APIArgv and CLIArgv are the command lines.
	APIArgv, CLIArgv []string
}

// apiStart is one start through the API.
type apiStart struct {
	ready, configure, reply, toMarker, execToMarker time.Duration
}

// benchStart alternates o.runs starts through the Firecracker API with
// o.runs starts by `vireo run` (the one that goes first alternates).
func benchStart(ctx context.Context, o *options, g harness.Guest, dir string, progress func(string, ...any)) (*startResults, error) {
	sock := filepath.Join(dir, "fc.sock")
	res := &startResults{
		APIArgv: []string{o.vireo, "run", "--api-sock", sock, "--console", "stdio"},
		CLIArgv: harness.VireoArgv(o.vireo, g),
	}
	api := func(i int) error {
		s, err := startAPI(ctx, sock, res.APIArgv, g, o.timeout)
		if err != nil {
			return fmt.Errorf("run %d through the API: %w", i+1, err)
		}
		res.APIReady = append(res.APIReady, ms(s.ready))
		res.Configure = append(res.Configure, ms(s.configure))
		res.StartReply = append(res.StartReply, ms(s.reply))
		res.APIToMarker = append(res.APIToMarker, ms(s.toMarker))
		res.APIExecToMarker = append(res.APIExecToMarker, ms(s.execToMarker))
		progress("control: %d/%d API  InstanceStart → marker %.2f s (reply %.1f ms; exec → API ready %.1f ms, configured in %.1f ms)",
			i+1, o.runs, s.toMarker.Seconds(), ms(s.reply), ms(s.ready), ms(s.configure))
		return nil
	}
	cli := func(i int) error {
		d, err := harness.TimeToMarker(ctx, "vireo run", res.CLIArgv, harness.BootMarker, o.timeout, nil)
		if err != nil {
			return fmt.Errorf("run %d by the command line: %w", i+1, err)
		}
		res.CLIToMarker = append(res.CLIToMarker, ms(d))
		progress("control: %d/%d CLI  exec → marker %.2f s", i+1, o.runs, d.Seconds())
		return nil
	}
	for i := range o.runs {
		first, second, name := api, cli, "API"
		if i%2 == 1 {
			first, second, name = cli, api, "CLI"
		}
		res.FirstWay = append(res.FirstWay, name)
		if err := first(i); err != nil {
			return nil, err
		}
		if err := second(i); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// startAPI runs argv (`vireo run --api-sock sock`), configures the guest
// through the API and times InstanceStart.
func startAPI(ctx context.Context, sock string, argv []string, g harness.Guest, timeout time.Duration) (apiStart, error) {
	var s apiStart
	p, err := harness.Start("vireo (API)", argv)
	if err != nil {
		return s, err
	}
	defer p.Kill()
	c := newFCClient(sock)
	defer c.close()
	if err := c.waitReady(ctx, 30*time.Second); err != nil {
		return s, err
	}
	ready := time.Now()
	s.ready = ready.Sub(p.Started)
	if err := c.put(ctx, "/machine-config", map[string]any{"vcpu_count": g.CPUs, "mem_size_mib": g.MemMiB}); err != nil {
		return s, err
	}
	boot := map[string]any{"kernel_image_path": g.Kernel, "boot_args": g.Cmdline}
	if g.Initrd != "" {
		boot["initrd_path"] = g.Initrd
	}
	if err := c.put(ctx, "/boot-source", boot); err != nil {
		return s, err
	}
	from := p.Len()
	start := time.Now()
	s.configure = start.Sub(ready)
	if err := c.put(ctx, "/actions", map[string]any{"action_type": "InstanceStart"}); err != nil {
		return s, err
	}
	s.reply = time.Since(start)
	m, err := p.WaitFor(ctx, harness.BootMarker, from, timeout)
	if err != nil {
		return s, err
	}
	s.toMarker = m.At.Sub(start)
	s.execToMarker = m.At.Sub(p.Started)
	return s, nil
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
