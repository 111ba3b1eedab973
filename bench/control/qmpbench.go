package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/vireo-vmm/vireo/bench/internal/harness"
)

// queryStatus is the command timed, encoded once for both VMMs.
var queryStatus = []byte(`{"execute": "query-status"}` + "\n")

// qmpResults are the round trips of both VMMs, in microseconds, in the
// order they were taken.
type qmpResults struct {
	Vireo, QEMU []float64
	// Blocks is how many blocks each VMM ran; FirstVMM which one went
	// first in the first pair of blocks.
	Blocks   int
	FirstVMM string
	// VireoArgv and QEMUArgv are the command lines of the two VMs.
	VireoArgv, QEMUArgv []string
}

// qmpTarget is a running VM and a QMP session to it.
type qmpTarget struct {
	name    string
	proc    *harness.Proc
	q       *harness.QMP
	samples *[]float64
}

// benchQMP boots Vireo, then QEMU, each to the guest's shell (one boot at
// a time), and times query-status round trips on both, alternating
// blocks of o.block.
func benchQMP(ctx context.Context, o *options, g harness.Guest, dir string, progress func(string, ...any)) (*qmpResults, error) {
	res := &qmpResults{}
	vsock, qsock := filepath.Join(dir, "v.qmp"), filepath.Join(dir, "q.qmp")
	res.VireoArgv = harness.VireoArgv(o.vireo, g, "--qmp", "unix:"+vsock)
	res.QEMUArgv = harness.QEMUArgv(o.qemu, g, "-qmp", "unix:"+qsock+",server=on,wait=off")

	targets := []*qmpTarget{
		{name: "Vireo", samples: &res.Vireo},
		{name: "QEMU", samples: &res.QEMU},
	}
	defer func() {
		for _, t := range targets {
			if t.q != nil {
				t.q.Close()
			}
			if t.proc != nil {
				t.proc.Kill()
			}
		}
	}()
	for i, argv := range [][]string{res.VireoArgv, res.QEMUArgv} {
		t := targets[i]
		progress("control: booting %s to the guest's shell (QMP benchmark)...", t.name)
		var err error
		if t.proc, err = harness.Start(t.name, argv); err != nil {
			return nil, err
		}
		if _, err := t.proc.WaitFor(ctx, harness.ShellPrompt, 0, o.timeout); err != nil {
			return nil, err
		}
		sock := []string{vsock, qsock}[i]
		if t.q, err = harness.DialQMP(ctx, sock, 30*time.Second); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		if err := checkRunning(t); err != nil {
			return nil, err
		}
	}

	for _, t := range targets {
		if err := roundTrips(t, o.warmup, nil); err != nil {
			return nil, err
		}
	}
	progress("control: %d untimed round trips on each VMM done; timing %d each in blocks of %d", o.warmup, o.n, o.block)
	res.FirstVMM = targets[0].name
	for b := 0; len(res.Vireo) < o.n || len(res.QEMU) < o.n; b++ {
		order := targets
		if b%2 == 1 {
			order = []*qmpTarget{targets[1], targets[0]}
		}
		for _, t := range order {
			k := min(o.block, o.n-len(*t.samples))
			if k == 0 {
				continue
			}
			if err := roundTrips(t, k, t.samples); err != nil {
				return nil, err
			}
		}
		res.Blocks++
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	for _, t := range targets {
		if err := checkRunning(t); err != nil {
			return nil, err
		}
		v := harness.Summarize(*t.samples)
		progress("control: %-5s query-status median %.1f µs, p90 %.1f, p99 %.1f", t.name, v.Median, v.P90, v.P99)
	}
	return res, nil
}

// roundTrips runs n query-status round trips on t, appending each one's
// time in microseconds to samples when it is not nil. Every reply is
// checked after its round trip is timed.
func roundTrips(t *qmpTarget, n int, samples *[]float64) error {
	for range n {
		start := time.Now()
		line, err := t.q.RoundTrip(queryStatus)
		d := time.Since(start)
		if err != nil {
			return fmt.Errorf("%s: query-status: %w", t.name, err)
		}
		if err := checkStatusReply(line); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		if samples != nil {
			*samples = append(*samples, float64(d)/float64(time.Microsecond))
		}
	}
	return nil
}

// checkRunning requires t's VM to report that it runs.
func checkRunning(t *qmpTarget) error {
	line, err := t.q.RoundTrip(queryStatus)
	if err != nil {
		return fmt.Errorf("%s: query-status: %w", t.name, err)
	}
	if err := checkStatusReply(line); err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	return nil
}

// checkStatusReply requires a query-status reply of a running VM.
func checkStatusReply(line []byte) error {
	var r struct {
		Return *struct {
			Status  string `json:"status"`
			Running bool   `json:"running"`
		} `json:"return"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return fmt.Errorf("query-status reply: %w", err)
	}
	if r.Return == nil || r.Return.Status != "running" || !r.Return.Running {
		return fmt.Errorf("query-status: the VM is not running: %.200s", line)
	}
	return nil
}
