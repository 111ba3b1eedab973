package qmp

import (
	"errors"
	"fmt"
)

// ErrorClass is a QMP error class as QEMU names it.
type ErrorClass string

// The error classes QEMU still uses.
const (
	ClassGeneric         ErrorClass = "GenericError"
	ClassCommandNotFound ErrorClass = "CommandNotFound"
	ClassDeviceNotActive ErrorClass = "DeviceNotActive"
	ClassDeviceNotFound  ErrorClass = "DeviceNotFound"
	ClassKVMMissingCap   ErrorClass = "KVMMissingCap"
)

// Error is a QMP error reply: a class and a human-readable description.
// A Machine may return one (or wrap one with %w) to choose the class a
// client sees; any other error becomes a GenericError with its text.
type Error struct {
	Class ErrorClass `json:"class"`
	Desc  string     `json:"desc"`
}

func (e *Error) Error() string { return "qmp: " + string(e.Class) + ": " + e.Desc }

// NewError returns an Error of the given class.
func NewError(class ErrorClass, format string, args ...any) *Error {
	return &Error{Class: class, Desc: fmt.Sprintf(format, args...)}
}

// Sentinel errors.
var (
	// ErrNoBalloon is what a Machine returns for balloon requests while it
	// has no balloon device; clients see QEMU's DeviceNotActive error.
	ErrNoBalloon = &Error{Class: ClassDeviceNotActive, Desc: "No balloon device has been activated"}
	// ErrSpec reports a --qmp argument that cannot be parsed.
	ErrSpec = errors.New("qmp: invalid socket spec")
	// ErrServerClosed is returned by Serve after Close.
	ErrServerClosed = errors.New("qmp: server closed")
)

// toError turns any error into the Error sent to the client.
func toError(err error) *Error {
	var qe *Error
	if errors.As(err, &qe) {
		return qe
	}
	return &Error{Class: ClassGeneric, Desc: err.Error()}
}

// genericf is a GenericError, the class of nearly every QEMU error.
func genericf(format string, args ...any) *Error {
	return NewError(ClassGeneric, format, args...)
}

// parseError is QEMU's error for input that is not JSON.
func parseError(detail string) *Error {
	return genericf("JSON parse error, %s", detail)
}
