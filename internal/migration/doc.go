// Package migration moves a running VM to another Vireo process: the
// stream format, the pre-copy sender and the receiver.
//
// # Stream
//
// A stream is a fixed header followed by framed records:
//
//	header  magic "VIREOMIG" [8]byte | version uint32 | flags uint32 (zero)
//	record  kind uint8 | zero [3]byte | length uint32 | payload [length]byte | crc uint32
//
// Integers are little endian. The CRC is CRC-32C (Castagnoli) over the
// record's first eight bytes and its payload, so a flipped bit anywhere in
// a record is caught before the record is used. Each kind has a maximum
// payload length, checked before anything is read, and records must come
// in the order below; a stream that breaks either rule is refused.
//
//	Setup    once, first: the RAM layout (region count, then GPA and size
//	         of each region) and an opaque machine description (JSON from
//	         the VMM) that lets the target size guest memory.
//	Pages    a run of 1 to MaxRunPages consecutive 4 KiB pages of one
//	         region: region, flags, first page, count, then the pages'
//	         bytes; with FlagZero the pages are all zero and no bytes
//	         follow.
//	PassEnd  closes a pass: its number (1, 2, ...) and how many pages it
//	         carried, which the receiver checks against what it got.
//	State    once, after the last pass: the machine's device state (the
//	         VMM's snapshot document, itself checksummed).
//	Verify   optional, after State: CRC-32C of each page of a run of up
//	         to MaxVerifyPages pages of one region (region, zero flags,
//	         first page, count, then the checksums), taken with the VM
//	         paused: the receiver compares them with what it holds.
//	End      last: the number of passes.
//
// Pass 1 carries every page that is not zero (the target's memory starts
// zeroed); later passes carry the pages written since the previous one,
// zero pages as FlagZero runs. The final pass runs with the VM paused.
//
// After End the target answers on the same connection with an
// acknowledgement (see WriteAck), once the machine has been rebuilt from
// the stream; only then does the source consider the migration complete.
package migration
