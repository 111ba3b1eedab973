package virtio_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/virtio"
)

// Layout of the fuzzed guest: 16 KiB of RAM whose first bytes come from
// the fuzzer; the rings of a queue of up to 64 entries sit at fixed places
// inside them. Small inputs keep the fuzzer's minimisation quick.
const (
	fuzzMem   = 16 << 10
	fuzzDesc  = 0x0000
	fuzzAvail = 0x0400
	fuzzUsed  = 0x0600
	fuzzQueue = 64
)

// FuzzChainWalk fills guest memory (descriptor tables, available ring,
// buffers) with arbitrary bytes and drives the device side: every call
// returns, the walk is bounded by the queue size, and no access leaves
// guest RAM (guestmem would report it; nothing may panic).
func FuzzChainWalk(f *testing.F) {
	seed := make([]byte, 0x700)
	// Descriptor 0: readable 16 bytes at 0x3000 chained to 1; 1: writable;
	// 2: indirect table at 0x3400 of two entries; 3: a loop.
	put := func(b []byte, i int, addr uint64, l uint32, flags, next uint16) {
		binary.LittleEndian.PutUint64(b[16*i:], addr)
		binary.LittleEndian.PutUint32(b[16*i+8:], l)
		binary.LittleEndian.PutUint16(b[16*i+12:], flags)
		binary.LittleEndian.PutUint16(b[16*i+14:], next)
	}
	put(seed, 0, 0x3000, 16, virtio.DescFlagNext, 1)
	put(seed, 1, 0x3100, 32, virtio.DescFlagWrite, 0)
	put(seed, 2, 0x3400, 32, virtio.DescFlagIndirect, 0)
	put(seed, 3, 0x3000, 8, virtio.DescFlagNext, 3) // loop
	binary.LittleEndian.PutUint16(seed[fuzzAvail+2:], 3)
	binary.LittleEndian.PutUint16(seed[fuzzAvail+6:], 2)
	binary.LittleEndian.PutUint16(seed[fuzzAvail+8:], 3)
	f.Add(uint8(3), uint8(3), uint16(0), seed)
	f.Add(uint8(8), uint8(1), uint16(0xfff0), seed[:64])
	f.Add(uint8(0), uint8(0), uint16(7), []byte{})

	mem, err := guestmem.New([]guestmem.RegionSpec{{GPA: 0, Size: fuzzMem}}, guestmem.Backing{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mem.Close() })
	q, err := virtio.NewQueue(fuzzQueue)
	if err != nil {
		f.Fatal(err)
	}
	chain := q.NewChain()
	buf := make([]byte, 1024)

	f.Fuzz(func(t *testing.T, sizeLog, featBits uint8, start uint16, data []byte) {
		mem.Zero(0, fuzzMem)
		mem.WriteAt(data[:min(len(data), fuzzMem)], 0)
		size := uint16(1) << (sizeLog % 7) // 1..64
		var features uint64 = virtio.FeatureVersion1
		if featBits&1 != 0 {
			features |= virtio.FeatureEventIdx
		}
		if featBits&2 != 0 {
			features |= virtio.FeatureIndirectDesc
		}
		cfg := virtio.QueueConfig{Size: size, DescTable: fuzzDesc, AvailRing: fuzzAvail, UsedRing: fuzzUsed}
		if err := q.Restore(mem, virtio.QueueState{Config: cfg, Ready: true, Features: features, LastAvail: start, NextUsed: start}); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		// Device writes into the rings can publish more chains, so the
		// device loop is bounded here; each walk bounds itself.
		for i := 0; i < int(size)+4; i++ {
			ok, err := q.Next(chain)
			if err != nil && !errors.Is(err, virtio.ErrBadChain) && !errors.Is(err, virtio.ErrBadQueue) {
				t.Fatalf("unclassified error: %v", err)
			}
			if errors.Is(err, virtio.ErrBadQueue) || !ok {
				break
			}
			if chain.Len() > int(size) {
				t.Fatalf("chain of %d descriptors in a queue of %d", chain.Len(), size)
			}
			if err == nil {
				// Consume (a bounded part of) both halves of the chain;
				// writes may land on the rings themselves, as a guest
				// could arrange.
				for range 16 {
					if _, err := chain.Read(buf); err != nil {
						break
					}
				}
				for range 16 {
					if _, err := chain.Write(buf); err != nil {
						break
					}
				}
				chain.ReadAt(buf[:64], int64(start))
				chain.WriteAt(buf[:64], int64(start))
			}
			if err := q.AddUsed(chain.Head(), chain.Written()); err != nil {
				t.Fatalf("AddUsed(%d): %v", chain.Head(), err)
			}
		}
		q.NeedsNotify()
	})
}
