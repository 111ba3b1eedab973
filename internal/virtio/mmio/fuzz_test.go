package mmio

import (
	"encoding/binary"
	"testing"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

// FuzzMMIORegisters plays arbitrary sequences of register reads and writes
// (any offset, any width) against a transport: nothing panics, a device
// is never activated twice without a reset, a status write of 0 always
// resets, and FEATURES_OK never stands over features that were not
// offered or lack VERSION_1.
//
// Each operation takes 7 input bytes: kind (bit 0 write, bits 1-2 width
// 1/2/4/8), a 16-bit offset into the window and a 32-bit value.
func FuzzMMIORegisters(f *testing.F) {
	op := func(b []byte, write bool, width int, off uint16, v uint32) []byte {
		k := byte(0)
		if write {
			k = 1
		}
		switch width {
		case 2:
			k |= 2
		case 4:
			k |= 4
		case 8:
			k |= 6
		}
		b = append(b, k)
		b = binary.LittleEndian.AppendUint16(b, off)
		return binary.LittleEndian.AppendUint32(b, v)
	}
	var linux []byte
	for _, s := range []struct {
		off uint16
		v   uint32
	}{
		{regStatus, 0}, {regStatus, 1}, {regStatus, 3},
		{regDriverFeaturesSel, 1}, {regDriverFeatures, 1},
		{regStatus, 11},
		{regQueueSel, 0}, {regQueueNum, 8},
		{regQueueDescLow, 0x1000}, {regQueueDriverLow, 0x2000}, {regQueueDeviceLow, 0x3000},
		{regQueueReady, 1}, {regStatus, 15}, {regQueueNotify, 0}, {regInterruptACK, 1},
	} {
		linux = op(linux, true, 4, s.off, s.v)
		linux = op(linux, false, 4, regStatus, 0)
	}
	f.Add(linux)
	f.Add(op(op(nil, true, 2, regStatus, 0xffff), false, 8, regConfig+0xef8, 0))
	f.Add([]byte{})

	mem, err := guestmem.New([]guestmem.RegionSpec{{GPA: 0, Size: 64 << 10}}, guestmem.Backing{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mem.Close() })

	f.Fuzz(func(t *testing.T, ops []byte) {
		dev := &fakeDevice{t: t, features: testFeatures, sizes: []uint16{16, 8}}
		irq := &counter{}
		tr, err := New(dev, mem, WithTrigger(irq))
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		var buf [8]byte
		for len(ops) >= 7 {
			k, off, v := ops[0], uint64(binary.LittleEndian.Uint16(ops[1:]))%WindowSize, binary.LittleEndian.Uint32(ops[3:])
			ops = ops[7:]
			width := [4]int{1, 2, 4, 8}[(k>>1)&3]
			data := buf[:width]
			if k&1 == 0 {
				tr.Read(off, data)
				continue
			}
			binary.LittleEndian.PutUint64(buf[:], uint64(v)|uint64(v)<<32)
			tr.Write(off, data)
			st := tr.Status()
			if off == regStatus && width == 4 && v == 0 && st != 0 {
				t.Fatalf("status %#x after a reset", st)
			}
			if st&virtio.StatusFeaturesOK != 0 {
				if tr.drvFeatures&^tr.offered != 0 || tr.drvFeatures&virtio.FeatureVersion1 == 0 {
					t.Fatalf("FEATURES_OK with driver features %#x (offered %#x)", tr.drvFeatures, tr.offered)
				}
			}
			if dev.active && (st&virtio.StatusDriverOK == 0 || !tr.active) {
				t.Fatalf("device active with status %#x", st)
			}
		}
	})
}
