package fcapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Errors returned to Go callers (the CLI); HTTP clients see fault messages.
var (
	// ErrConfigFile reports a Firecracker config file that Vireo refuses.
	ErrConfigFile = errors.New("invalid Firecracker config file")
	// ErrStart reports an InstanceStart that failed.
	ErrStart = errors.New("cannot start the microVM")
	// ErrSocket reports an API socket that cannot be created.
	ErrSocket = errors.New("cannot serve the API socket")
)

// Firecracker's fault messages that clients may match on, kept verbatim.
const (
	msgNotSupportedPostBoot = "The requested operation is not supported after starting the microVM."
	msgNotSupportedPreBoot  = "The requested operation is not supported before starting the microVM."
	msgEmptyID              = "The ID cannot be empty."
	msgInvalidID            = "API Resource IDs can only contain alphanumeric characters and underscores."
	msgGetWithBody          = "GET request cannot have a body."
	msgEmptyPut             = "Empty PUT request."
	msgEmptyPatch           = "Empty PATCH request."
	msgIDMismatch           = "The id from the path does not match the id from the body!"
	msgMissingKernel        = "Cannot start microvm without kernel configuration."
	msgNoBalloon            = "No balloon device found."
	msgBalloonTooLarge      = "Amount of pages requested is too large."
	msgStatsDisabled        = "Statistics for the balloon device are not enabled"
	msgStatsToggle          = "Cannot enable/disable the statistics after boot."
	msgRootExists           = "A root block device already exists!"
	msgMetricsTwice         = "Reinitialization of metrics not allowed."
)

// fault is a refused request: an HTTP status and the message sent as
// {"fault_message": msg}.
type fault struct {
	status int
	msg    string
}

func (f *fault) Error() string { return f.msg }

// badRequest builds a 400 fault.
func badRequest(format string, args ...any) *fault {
	return &fault{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// bodyError is a request body that does not deserialize.
func bodyError(err error) *fault {
	return badRequest("An error occurred when deserializing the json body of a request: %s.", err)
}

// notSupported refuses a Firecracker feature Vireo does not implement.
func notSupported(what string) *fault {
	return badRequest("The requested operation is not supported: %s is not implemented in Vireo.", what)
}

// Response is an HTTP answer: a status and, unless the status is 204, a
// JSON body.
type Response struct {
	Status int
	Body   []byte
}

// faultResponse encodes f as Firecracker's error body.
func faultResponse(f *fault) Response {
	body, err := json.Marshal(struct {
		FaultMessage string `json:"fault_message"`
	}{f.msg})
	if err != nil {
		// Marshalling a struct of one string cannot fail; keep a valid body anyway.
		body = []byte(`{"fault_message":"internal error"}`)
	}
	return Response{Status: f.status, Body: body}
}

// okResponse encodes v as a 200 body, or returns 204 when v is nil.
func okResponse(v any) Response {
	if v == nil {
		return Response{Status: http.StatusNoContent}
	}
	body, err := json.Marshal(v)
	if err != nil {
		return faultResponse(&fault{status: http.StatusInternalServerError, msg: "cannot encode the response: " + err.Error()})
	}
	return Response{Status: http.StatusOK, Body: body}
}
