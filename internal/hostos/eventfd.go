// Package hostos wraps the host kernel facilities the VMM uses besides KVM:
// eventfds, thread signals, terminals and TAP devices.
package hostos

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// EventFD is a Linux eventfd counter, used for irqfd and ioeventfd.
type EventFD struct {
	fd int
}

// NewEventFD creates a non-blocking, close-on-exec eventfd.
func NewEventFD() (*EventFD, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("hostos: eventfd: %w", err)
	}
	return &EventFD{fd: fd}, nil
}

// FD returns the descriptor, for registration with KVM or epoll.
func (e *EventFD) FD() int { return e.fd }

// Signal adds 1 to the counter. It does not allocate.
func (e *EventFD) Signal() error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], 1)
	for {
		_, err := unix.Write(e.fd, b[:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN { // counter saturated: the reader is already due
			return nil
		}
		return err
	}
}

// Trigger implements irq.Trigger.
func (e *EventFD) Trigger() error { return e.Signal() }

// Drain reads and resets the counter; it returns 0 when nothing was pending.
func (e *EventFD) Drain() (uint64, error) {
	var b [8]byte
	for {
		_, err := unix.Read(e.fd, b[:])
		switch err {
		case nil:
			return binary.LittleEndian.Uint64(b[:]), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		}
		return 0, err
	}
}

// Close closes the eventfd.
func (e *EventFD) Close() error { return unix.Close(e.fd) }
