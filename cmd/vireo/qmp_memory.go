package main

import (
	"github.com/vireo-vmm/vireo/internal/api/qmp"
	"github.com/vireo-vmm/vireo/internal/devices/virtio/balloon"
)

// HostMemory answers x-query-vireo-memory and `info vireo-memory`.
func (m qmpMachine) HostMemory() (qmp.HostMemory, error) {
	r, err := m.ctl.MemoryReport()
	if err != nil {
		return qmp.HostMemory{}, err
	}
	hm := qmp.HostMemory{
		GuestMemory: r.GuestBytes, HugePages: r.HugePages, Merge: r.Merge, Shared: r.Shared,
		Resident: r.Resident, AnonHugePages: r.Mapping.AnonHugePages, Hugetlb: r.Mapping.Hugetlb(),
		KSMMerged: r.Mapping.KSM, Swap: r.Mapping.Swap,
		KSMMergingPages: r.KSM.MergingPages, KSMProfit: r.KSM.Profit, ProcessRSS: r.ProcessRSS,
	}
	if b := r.Balloon; b != nil {
		c := b.Counters
		hm.Balloon = &qmp.BalloonMemory{
			Target: uint64(b.TargetPages) * balloon.PageSize, Actual: uint64(b.ActualPages) * balloon.PageSize,
			InflatedPages: c.InflatedPages, DeflatedPages: c.DeflatedPages, Discarded: c.DiscardedBytes,
			Reported: c.ReportedBytes, InvalidPages: c.InvalidPages, StatsInterval: uint64(b.StatsInterval.Seconds()),
		}
		b.Stats.Each(func(t balloon.Tag, v uint64) {
			if hm.Balloon.Stats == nil {
				hm.Balloon.Stats = map[string]uint64{}
			}
			hm.Balloon.Stats[t.String()] = v
		})
	}
	return hm, nil
}
