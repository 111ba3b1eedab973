package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// scanNotes reads PT_NOTE segment i and records a PVH entry note if present.
func (img *elfImage) scanNotes(r io.ReaderAt, i int, off, filesz, align uint64) error {
	if filesz > maxNoteSegment {
		return errorf(ErrInvalid, "ELF note segment %d is %s (at most %s accepted)", i, human(filesz), human(maxNoteSegment))
	}
	buf := make([]byte, filesz)
	if err := readFull(r, buf, off); err != nil {
		return err
	}
	entry, ok, err := findPVHEntry(buf, align)
	if err != nil {
		return errorf(ErrInvalid, "ELF note segment %d: %v", i, err)
	}
	img.pvhEntry, img.hasPVH = entry, ok
	return nil
}

// findPVHEntry walks the notes in b (padded to 4 bytes, or 8 when the
// segment is 8-aligned) and returns the value of a "Xen" note of type
// XEN_ELFNOTE_PHYS32_ENTRY.
func findPVHEntry(b []byte, segAlign uint64) (entry uint64, found bool, err error) {
	const hdr = 12
	pad := uint64(4)
	if segAlign == 8 {
		pad = 8
	}
	le := binary.LittleEndian
	for len(b) >= hdr {
		namesz, descsz, typ := uint64(le.Uint32(b[0:])), uint64(le.Uint32(b[4:])), le.Uint32(b[8:])
		nameEnd := hdr + namesz
		descStart, _ := alignUp(nameEnd, pad) // at most 2^32+12: no overflow
		descEnd := descStart + descsz
		if descEnd > uint64(len(b)) {
			return 0, false, errors.New("note runs past the end of its segment")
		}
		name := bytes.TrimRight(b[hdr:nameEnd], "\x00")
		desc := b[descStart:descEnd]
		if typ == xenNotePhys32Entry && string(name) == "Xen" {
			switch {
			case descsz == 4:
				return uint64(le.Uint32(desc)), true, nil
			case descsz == 8 && le.Uint64(desc) < fourGiB:
				return le.Uint64(desc), true, nil
			}
			return 0, false, errors.New("Xen PVH entry note does not hold a 32-bit address")
		}
		next, _ := alignUp(descEnd, pad)
		if next >= uint64(len(b)) {
			break
		}
		b = b[next:]
	}
	return 0, false, nil
}
