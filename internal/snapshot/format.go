// Package snapshot defines Vireo's versioned, checksummed state format.
//
// A state file is a fixed header followed by a JSON document of plain data
// (each component's saved state) and a SHA-256 of the document:
//
//	magic    [8]byte  "VIREOSNP"
//	version  uint32   format version (little endian)
//	length   uint64   length of the JSON document
//	document [length]byte
//	checksum [32]byte SHA-256 of the document
//
// Components save plain data only, and are rebuilt from it through the same
// builder path as a fresh boot. Decoding checks every length against the
// input and refuses a wrong magic, an unknown version, a truncated file and
// a bad checksum before any component sees the data.
package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Magic starts every state file.
const Magic = "VIREOSNP"

// Version is the format version this build writes and reads.
const Version uint32 = 1

// MaxDocument bounds the JSON document a decoder accepts (the state of a VM
// with many vCPUs and devices is well under this; memory is a separate file).
const MaxDocument = 64 << 20

const headerSize = 8 + 4 + 8

// Errors a decoder reports.
var (
	ErrNotSnapshot = errors.New("snapshot: not a Vireo state file")
	ErrVersion     = errors.New("snapshot: unsupported state format version")
	ErrTruncated   = errors.New("snapshot: state file is truncated")
	ErrChecksum    = errors.New("snapshot: state file checksum mismatch (corrupt)")
	ErrTooLarge    = errors.New("snapshot: state document too large")
	ErrMalformed   = errors.New("snapshot: malformed state document")
)

// Encode writes v as a state file.
func Encode(w io.Writer, v any) error {
	doc, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("snapshot: encoding state: %w", err)
	}
	var hdr [headerSize]byte
	copy(hdr[:8], Magic)
	binary.LittleEndian.PutUint32(hdr[8:], Version)
	binary.LittleEndian.PutUint64(hdr[12:], uint64(len(doc)))
	sum := sha256.Sum256(doc)
	for _, b := range [][]byte{hdr[:], doc, sum[:]} {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("snapshot: writing state: %w", err)
		}
	}
	return nil
}

// Decode reads a state file into v, which must be a pointer. Unknown
// fields in the document are refused, so a state written by a newer
// format is not silently half-read.
func Decode(r io.Reader, v any) error {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return ErrTruncated
		}
		return fmt.Errorf("snapshot: reading state: %w", err)
	}
	if string(hdr[:8]) != Magic {
		return ErrNotSnapshot
	}
	if ver := binary.LittleEndian.Uint32(hdr[8:]); ver != Version {
		return fmt.Errorf("%w: file has version %d, this Vireo reads version %d", ErrVersion, ver, Version)
	}
	n := binary.LittleEndian.Uint64(hdr[12:])
	if n > MaxDocument {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
	}
	buf := make([]byte, n+sha256.Size)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return ErrTruncated
		}
		return fmt.Errorf("snapshot: reading state: %w", err)
	}
	doc, sum := buf[:n], buf[n:]
	if got := sha256.Sum256(doc); !bytes.Equal(got[:], sum) {
		return ErrChecksum
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}
