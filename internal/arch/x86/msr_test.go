package x86

import (
	"slices"
	"testing"
)

// pvmHostMSRs is KVM_GET_MSR_INDEX_LIST on the development host.
var pvmHostMSRs = []uint32{
	0x174, 0x175, 0x176, 0xc0000081, 0xc0000083, 0xc0000102, 0xc0000084, 0xc0000082,
	0x10, 0x277, 0xc0010117, 0x1d9, 0x1db, 0x1dc, 0x1dd, 0x1de, 0x12, 0x11,
	0x4b564d01, 0x4b564d00, 0x4b564d02, 0x4b564d03, 0x4b564d04, 0x4b564d06, 0x4b564d07,
	0x3b, 0x6e0, 0x10a, 0x345, 0x1a0, 0x17a, 0x17b, 0x34, 0xce, 0x140, 0xc001011f,
	0x1fc, 0x8b, 0xc0010015, 0x4b564d05,
}

func TestBootMSRs(t *testing.T) {
	want := map[uint32]uint64{
		MSRSysenterCS: 0, MSRSysenterESP: 0, MSRSysenterEIP: 0,
		MSRStar: 0, MSRLStar: 0, MSRCStar: 0, MSRSyscallMask: 0, MSRKernelGSBase: 0,
		MSRTSC: 0, MSRMiscEnable: 1, MSRMTRRDefType: 0x806,
	}
	got := BootMSRs()
	if len(got) != len(want) {
		t.Fatalf("%d boot MSRs, want %d", len(got), len(want))
	}
	for _, e := range got {
		v, ok := want[e.Index]
		if !ok || v != e.Data {
			t.Errorf("MSR %#x = %#x, want %#x (listed %v)", e.Index, e.Data, v, ok)
		}
		delete(want, e.Index)
	}
}

func TestSnapshotMSRIndices(t *testing.T) {
	got := SnapshotMSRIndices(pvmHostMSRs)
	want := []uint32{
		MSRTSC, MSRTSCAdjust, MSRSysenterCS, MSRSysenterESP, MSRSysenterEIP,
		MSRStar, MSRLStar, MSRCStar, MSRSyscallMask, MSRKernelGSBase,
		MSRMiscEnable, MSRPAT, MSRMTRRDefType, MSRAPICBase,
		MSRKVMSystemTime, MSRKVMWallClock, MSRKVMSystemTimeOld, MSRKVMWallClockOld,
		MSRKVMStealTime, MSRKVMPVEOIEn, MSRKVMPollControl, MSRKVMAsyncPFInt,
		MSRKVMAsyncPFEn, MSRKVMAsyncPFAck, MSRTSCDeadline,
	}
	if !slices.Equal(got, want) {
		t.Errorf("SnapshotMSRIndices(host) =\n%#x\nwant\n%#x", got, want)
	}

	// Only what KVM lists, plus the MSRs KVM handles without listing.
	if got := SnapshotMSRIndices(nil); !slices.Equal(got, []uint32{MSRMTRRDefType, MSRAPICBase}) {
		t.Errorf("SnapshotMSRIndices(nil) = %#x", got)
	}
	got = SnapshotMSRIndices([]uint32{MSRTSCDeadline, 0x12345, MSRTSC, MSRTSCAux})
	if !slices.Equal(got, []uint32{MSRTSC, MSRTSCAux, MSRMTRRDefType, MSRAPICBase, MSRTSCDeadline}) {
		t.Errorf("SnapshotMSRIndices(small) = %#x", got)
	}
}

func TestSnapshotMSROrder(t *testing.T) {
	pos := func(m uint32) int { return slices.Index(snapshotMSRs, m) }
	for _, before := range [][2]uint32{
		{MSRTSC, MSRTSCDeadline},
		{MSRTSC, MSRKVMSystemTime},
		{MSRAPICBase, MSRTSCDeadline},
		{MSRKVMAsyncPFInt, MSRKVMAsyncPFEn},
	} {
		if pos(before[0]) < 0 || pos(before[0]) >= pos(before[1]) {
			t.Errorf("MSR %#x must be restored before %#x", before[0], before[1])
		}
	}
	seen := map[uint32]bool{}
	for _, m := range snapshotMSRs {
		if seen[m] {
			t.Errorf("MSR %#x listed twice", m)
		}
		seen[m] = true
	}
}
