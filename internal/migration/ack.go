package migration

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The target's answer to a complete stream:
//
//	magic "VIREOACK" [8]byte | status uint32 (0 ok) | length uint32 | message | crc uint32
//
// The message (at most maxAckMessage bytes) says why a target refused.
const (
	ackMagic      = "VIREOACK"
	ackHeaderSize = 8 + 4 + 4
	maxAckMessage = 1024
)

// Ack errors.
var (
	// ErrRejected is a target's refusal; its message follows.
	ErrRejected = errors.New("migration: the target refused the VM")
	// ErrNoAck reports a target that did not acknowledge the stream.
	ErrNoAck = errors.New("migration: no acknowledgement from the target")
)

// WriteAck sends the target's answer: success when failure is nil,
// otherwise a refusal carrying failure's text.
func WriteAck(w io.Writer, failure error) error {
	var msg []byte
	status := uint32(0)
	if failure != nil {
		status = 1
		msg = []byte(failure.Error())
		if len(msg) > maxAckMessage {
			msg = msg[:maxAckMessage]
		}
	}
	b := make([]byte, ackHeaderSize, ackHeaderSize+len(msg)+crcSize)
	copy(b, ackMagic)
	binary.LittleEndian.PutUint32(b[8:], status)
	binary.LittleEndian.PutUint32(b[12:], uint32(len(msg)))
	b = append(b, msg...)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	_, err := w.Write(b)
	return err
}

// ReadAck waits for the target's answer: nil for success, an error
// wrapping ErrRejected with the target's reason, or one wrapping ErrNoAck.
func ReadAck(r io.Reader) error {
	var h [ackHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return fmt.Errorf("%w: %v", ErrNoAck, closedText(err))
	}
	n := binary.LittleEndian.Uint32(h[12:])
	if string(h[:8]) != ackMagic || n > maxAckMessage {
		return fmt.Errorf("%w: the answer is not an acknowledgement", ErrNoAck)
	}
	rest := make([]byte, n+crcSize)
	if _, err := io.ReadFull(r, rest); err != nil {
		return fmt.Errorf("%w: %v", ErrNoAck, closedText(err))
	}
	crc := crc32.Update(crc32.Checksum(h[:], castagnoli), castagnoli, rest[:n])
	if crc != binary.LittleEndian.Uint32(rest[n:]) {
		return fmt.Errorf("%w: the acknowledgement is corrupt", ErrNoAck)
	}
	if binary.LittleEndian.Uint32(h[8:]) != 0 {
		return fmt.Errorf("%w: %s", ErrRejected, rest[:n])
	}
	return nil
}

// closedText names a connection that ended without an answer.
func closedText(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the target closed the connection"
	}
	return err.Error()
}
