package migration

import (
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/vireo-vmm/vireo/internal/guestmem"
)

// Stream constants.
const (
	// Magic starts every stream.
	Magic = "VIREOMIG"
	// Version is the stream version this build writes and reads.
	Version uint32 = 1
	// PageSize is the unit of RAM transfer.
	PageSize = guestmem.PageSize
	// MaxRunPages is the most pages one Pages record carries.
	MaxRunPages = 256
	// MaxRegions is the most RAM regions a Setup record may list.
	MaxRegions = 64
	// MaxSetupDoc bounds the machine description in the Setup record.
	MaxSetupDoc = 1 << 20
	// MaxStateDoc bounds the State record's document.
	MaxStateDoc = 64 << 20
	// MaxVerifyPages is the most page checksums one Verify record carries.
	MaxVerifyPages = 1 << 16
)

const (
	streamHeaderSize = 8 + 4 + 4
	recordHeaderSize = 1 + 3 + 4
	crcSize          = 4
	pagesHeaderSize  = 4 + 4 + 8 + 4 // region, flags, first page, count
	passEndSize      = 4 + 8         // pass, pages
	endSize          = 4             // passes
)

// Kind is a record's type.
type Kind uint8

// Record kinds.
const (
	KindSetup   Kind = 1
	KindPages   Kind = 2
	KindPassEnd Kind = 3
	KindState   Kind = 4
	KindEnd     Kind = 5
	KindVerify  Kind = 6
)

func (k Kind) String() string {
	switch k {
	case KindSetup:
		return "setup"
	case KindPages:
		return "pages"
	case KindPassEnd:
		return "pass-end"
	case KindState:
		return "state"
	case KindEnd:
		return "end"
	case KindVerify:
		return "verify"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// maxPayload is the largest payload a record of kind k may have, or -1
// for an unknown kind.
func maxPayload(k Kind) int64 {
	switch k {
	case KindSetup:
		return 4 + MaxRegions*16 + MaxSetupDoc
	case KindPages:
		return pagesHeaderSize + MaxRunPages*PageSize
	case KindPassEnd:
		return passEndSize
	case KindState:
		return MaxStateDoc
	case KindEnd:
		return endSize
	case KindVerify:
		return pagesHeaderSize + MaxVerifyPages*4
	}
	return -1
}

// FlagZero marks a Pages record whose pages are all zero (no data follows).
const FlagZero uint32 = 1

// Errors a reader reports; every one names what was wrong in its message.
var (
	ErrNotStream = errors.New("migration: not a Vireo migration stream")
	ErrVersion   = errors.New("migration: unsupported stream version")
	ErrTruncated = errors.New("migration: stream ended early")
	ErrChecksum  = errors.New("migration: record checksum mismatch (corrupt stream)")
	ErrRecord    = errors.New("migration: malformed record")
	ErrProtocol  = errors.New("migration: records out of order")
	ErrLayout    = errors.New("migration: RAM layout mismatch")
	ErrVerify    = errors.New("migration: received memory differs from the source's")
)

// castagnoli is the CRC-32C table (hardware accelerated on amd64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)
