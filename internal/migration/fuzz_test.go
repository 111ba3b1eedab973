package migration

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// FuzzMigrationStream feeds arbitrary bytes to the receiver: it must
// return an error or a consistent result, never panic, never write
// outside the memory it allocated, and allocate memory in proportion to
// the input (the allocator refuses more than 4 MiB of RAM; documents
// grow only as their bytes arrive).
func FuzzMigrationStream(f *testing.F) {
	good := validStream(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:streamHeaderSize])
	f.Add([]byte(Magic))
	bad := bytes.Clone(good)
	bad[len(bad)-10] ^= 0xff
	f.Add(bad)
	// A stream whose state record claims the maximum length.
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Header()
	w.Setup(testLayout, nil)
	w.EndPass(1, 0)
	w.Flush()
	b := append(buf.Bytes(), byte(KindState), 0, 0, 0, 0, 0, 0, 4)
	f.Add(b)

	f.Fuzz(func(t *testing.T, data []byte) {
		var allocated *guestmem.Memory
		rc := &Receiver{Alloc: func(specs []guestmem.RegionSpec, doc []byte) (*guestmem.Memory, error) {
			var total uint64
			for _, s := range specs {
				total += s.Size
			}
			if total > 4<<20 || len(specs) > 4 {
				return nil, errors.New("too much RAM for the fuzzer")
			}
			m, err := guestmem.New(specs, guestmem.Backing{})
			allocated = m
			return m, err
		}}
		in, err := rc.Receive(bytes.NewReader(data))
		if err != nil {
			if in != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		defer in.Memory.Close()
		if in.Memory != allocated || in.State == nil || in.Passes == 0 {
			t.Fatalf("accepted an inconsistent stream: %+v", in)
		}
	})
}

// FuzzAck feeds arbitrary bytes to the source's reader of the target's
// answer: only a well-formed, checksummed acknowledgement is success.
func FuzzAck(f *testing.F) {
	var ok, no bytes.Buffer
	WriteAck(&ok, nil)
	WriteAck(&no, errors.New("refused"))
	f.Add(ok.Bytes())
	f.Add(no.Bytes())
	f.Add([]byte(ackMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := ReadAck(bytes.NewReader(data))
		if err == nil && !bytes.HasPrefix(data, ok.Bytes()[:ackHeaderSize]) {
			t.Fatalf("accepted %q", data)
		}
		if err != nil && !errors.Is(err, ErrNoAck) && !errors.Is(err, ErrRejected) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}
