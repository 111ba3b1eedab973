package main

import (
	"context"
	"fmt"
	"time"

	"github.com/vireo-vmm/vireo/bench/internal/harness"
)

// pair holds one series of samples per VMM.
type pair struct {
	Vireo, QEMU []float64
}

func (p *pair) add(name string, v float64) {
	if name == "Vireo" {
		p.Vireo = append(p.Vireo, v)
	} else {
		p.QEMU = append(p.QEMU, v)
	}
}

// results are the samples of one run, in iteration order.
type results struct {
	Insn pair // milliseconds
	Boot pair // seconds
	Mem  pair // MiB
	// Usage is the memory split of each Linux boot, per VMM.
	Usage map[string][]memUsage
	// FirstVMM names which VMM ran first in each iteration.
	FirstVMM []string
}

// benchmark runs o.n iterations. Each iteration runs every selected
// benchmark in both VMMs, one after the other; the VMM that goes first
// alternates between iterations.
func benchmark(ctx context.Context, o *options, e *env, progress func(string, ...any)) (*results, error) {
	res := &results{Usage: map[string][]memUsage{}}
	if o.warmup && o.benches.insn {
		for _, v := range []vmm{e.vireo, e.qemu} {
			if _, err := bootTiny(ctx, v, e.tiny, o.insnTimeout); err != nil {
				return nil, fmt.Errorf("warm-up: %w", err)
			}
		}
		progress("bench: warm-up done (tiny guest booted once in each VMM)")
	}
	for i := range o.n {
		order := []vmm{e.vireo, e.qemu}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		res.FirstVMM = append(res.FirstVMM, order[0].Name)
		if o.benches.insn {
			for _, v := range order {
				d, err := bootTiny(ctx, v, e.tiny, o.insnTimeout)
				if err != nil {
					return nil, fmt.Errorf("iteration %d: first instruction: %w", i+1, err)
				}
				ms := float64(d) / float64(time.Millisecond)
				res.Insn.add(v.Name, ms)
				progress("bench: %d/%d insn %-5s %8.1f ms", i+1, o.n, v.Name, ms)
			}
		}
		if o.benches.boot || o.benches.mem {
			for _, v := range order {
				d, u, err := bootLinux(ctx, v, e.guest, o)
				if err != nil {
					return nil, fmt.Errorf("iteration %d: Linux boot: %w", i+1, err)
				}
				s := d.Seconds()
				res.Boot.add(v.Name, s)
				msg := fmt.Sprintf("bench: %d/%d boot %-5s %8.2f s", i+1, o.n, v.Name, s)
				if o.benches.mem {
					res.Mem.add(v.Name, mib(u.Overhead))
					res.Usage[v.Name] = append(res.Usage[v.Name], u)
					msg += fmt.Sprintf("   overhead %6.1f MiB (RSS %.1f, guest RAM %.1f)", mib(u.Overhead), mib(u.Total), mib(u.Guest))
					if u.Merged > 0 {
						msg += fmt.Sprintf(" [guest RAM mapping merged with %s]", humanBytes(u.Merged))
					}
				}
				progress("%s", msg)
			}
		}
	}
	if !o.benches.boot {
		res.Boot = pair{} // timed only as a by-product of the memory boots
	}
	return res, nil
}

// bootTiny times one VMM from exec to the tiny guest's byte on stdout.
func bootTiny(ctx context.Context, v vmm, g harness.Guest, timeout time.Duration) (time.Duration, error) {
	return harness.TimeToMarker(ctx, v.Name, v.Argv(g), string(rune(tinyMarker)), timeout, nil)
}

// bootLinux times one VMM from exec to the guest's boot marker and, when
// memory is measured, reads its memory split o.settle after the marker.
func bootLinux(ctx context.Context, v vmm, g harness.Guest, o *options) (time.Duration, memUsage, error) {
	var u memUsage
	var after func(*harness.Proc) error
	if o.benches.mem {
		after = func(p *harness.Proc) error {
			select {
			case <-time.After(o.settle):
			case <-ctx.Done():
				return ctx.Err()
			}
			var err error
			u, err = readUsage(p.Pid(), uint64(g.MemMiB)<<20)
			return err
		}
	}
	d, err := harness.TimeToMarker(ctx, v.Name, v.Argv(g), harness.BootMarker, o.timeout, after)
	return d, u, err
}

// mib converts bytes to MiB.
func mib(b uint64) float64 { return float64(b) / (1 << 20) }
