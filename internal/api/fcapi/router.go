package fcapi

import (
	"net/http"
	"strings"
	"unicode"
)

// endpoint names a request for the API request counters of the metrics
// ("put_api_requests", "drive"); name is empty for uncounted endpoints.
type endpoint struct {
	group, name string
}

var (
	epNone           = endpoint{}
	epGetInstance    = endpoint{"get_api_requests", "instance_info"}
	epGetMachine     = endpoint{"get_api_requests", "machine_cfg"}
	epGetVersion     = endpoint{"get_api_requests", "vmm_version"}
	epGetMMDS        = endpoint{"get_api_requests", "mmds"}
	epPutActions     = endpoint{"put_api_requests", "actions"}
	epPutBootSource  = endpoint{"put_api_requests", "boot_source"}
	epPutDrive       = endpoint{"put_api_requests", "drive"}
	epPutLogger      = endpoint{"put_api_requests", "logger"}
	epPutMachine     = endpoint{"put_api_requests", "machine_cfg"}
	epPutMetrics     = endpoint{"put_api_requests", "metrics"}
	epPutNetwork     = endpoint{"put_api_requests", "network"}
	epPutMMDS        = endpoint{"put_api_requests", "mmds"}
	epPutVsock       = endpoint{"put_api_requests", "vsock"}
	epPatchDrive     = endpoint{"patch_api_requests", "drive"}
	epPatchNetwork   = endpoint{"patch_api_requests", "network"}
	epPatchMachine   = endpoint{"patch_api_requests", "machine_cfg"}
	epPatchMMDS      = endpoint{"patch_api_requests", "mmds"}
	countedEndpoints = []endpoint{
		epGetInstance, epGetMachine, epGetMMDS, epGetVersion,
		epPutActions, epPutBootSource, epPutDrive, epPutLogger, epPutMachine,
		epPutMetrics, epPutNetwork, epPutMMDS, epPutVsock,
		epPatchDrive, epPatchNetwork, epPatchMachine, epPatchMMDS,
	}
)

// parseRequest turns a method, a path and a body into one action, the
// way Firecracker's parsed_request.rs does: a GET may not have a body, a
// PUT or PATCH must have one, and anything else is an invalid
// method/path. It also names the endpoint for the request counters, even
// when parsing fails.
func parseRequest(method, path string, body []byte) (endpoint, action, *fault) {
	tokens := pathTokens(path)
	var head, id string
	if len(tokens) > 0 {
		head = tokens[0]
	}
	hasBody := len(body) > 0
	switch method {
	case http.MethodGet:
		if hasBody {
			return epNone, nil, badRequest(msgGetWithBody)
		}
		return parseGet(method, path, tokens)
	case http.MethodPut, http.MethodPatch:
		if !hasBody {
			if method == http.MethodPut {
				return epNone, nil, badRequest(msgEmptyPut)
			}
			return epNone, nil, badRequest(msgEmptyPatch)
		}
	default:
		return epNone, nil, invalidPath(method, path)
	}
	if len(tokens) > 1 {
		id = tokens[1]
	}
	// Resources with an ID take exactly one more token; others none.
	switch head {
	case "drives", "network-interfaces", "snapshot":
		if len(tokens) > 2 {
			return epNone, nil, invalidPath(method, path)
		}
	case "balloon":
		if len(tokens) > 2 || (len(tokens) == 2 && (method != http.MethodPatch || id != "statistics")) {
			return epNone, nil, invalidPath(method, path)
		}
	case "mmds":
		if len(tokens) > 2 || (len(tokens) == 2 && (method != http.MethodPut || id != "config")) {
			return epNone, nil, invalidPath(method, path)
		}
	default:
		if len(tokens) > 1 {
			return epNone, nil, invalidPath(method, path)
		}
	}
	if method == http.MethodPut {
		return parsePut(method, path, head, id, body)
	}
	return parsePatch(method, path, head, id, body)
}

func parseGet(method, path string, tokens []string) (endpoint, action, *fault) {
	switch strings.Join(tokens, "/") {
	case "":
		return epGetInstance, getInstanceInfo{}, nil
	case "machine-config":
		return epGetMachine, getMachineConfig{}, nil
	case "version":
		return epGetVersion, getVersion{}, nil
	case "vm/config":
		return epNone, getFullConfig{}, nil
	case "balloon":
		return epNone, getBalloon{}, nil
	case "balloon/statistics":
		return epNone, getBalloonStats{}, nil
	case "mmds":
		return epGetMMDS, unsupported{"MMDS"}, nil
	}
	return epNone, nil, invalidPath(method, path)
}

func parsePut(method, path, head, id string, body []byte) (endpoint, action, *fault) {
	switch head {
	case "actions":
		var b actionBody
		if err := decodeBody(body, &b); err != nil {
			return epPutActions, nil, bodyError(err)
		}
		a, f := parseActionType(b.ActionType)
		return epPutActions, a, f
	case "boot-source":
		var b bootSource
		if err := decodeBody(body, &b); err != nil {
			return epPutBootSource, nil, bodyError(err)
		}
		return epPutBootSource, putBootSource{b}, nil
	case "drives":
		if f := checkID(id); f != nil {
			return epPutDrive, nil, f
		}
		var d drive
		if err := decodeBody(body, &d); err != nil {
			return epPutDrive, nil, bodyError(err)
		}
		if d.DriveID != id {
			return epPutDrive, nil, badRequest(msgIDMismatch)
		}
		return epPutDrive, putDrive{d}, nil
	case "logger":
		var b loggerPut
		if err := decodeBody(body, &b); err != nil {
			return epPutLogger, nil, bodyError(err)
		}
		return epPutLogger, putLogger{b}, nil
	case "machine-config":
		var b machineConfigPut
		if err := decodeBody(body, &b); err != nil {
			return epPutMachine, nil, bodyError(err)
		}
		return epPutMachine, updateMachineConfig{b.patch()}, nil
	case "metrics":
		var b metricsConfig
		if err := decodeBody(body, &b); err != nil {
			return epPutMetrics, nil, bodyError(err)
		}
		return epPutMetrics, putMetrics{b}, nil
	case "network-interfaces":
		if f := checkID(id); f != nil {
			return epPutNetwork, nil, f
		}
		var n networkInterface
		if err := decodeBody(body, &n); err != nil {
			return epPutNetwork, nil, bodyError(err)
		}
		if n.IfaceID != id {
			return epPutNetwork, nil, badRequest("The id from the path [%s] does not match the id from the body [%s]!", id, n.IfaceID)
		}
		return epPutNetwork, putNetwork{n}, nil
	case "vsock":
		var v vsockConfig
		if err := decodeBody(body, &v); err != nil {
			return epPutVsock, nil, bodyError(err)
		}
		return epPutVsock, putVsock{v}, nil
	case "balloon":
		var b balloonPut
		if err := decodeBody(body, &b); err != nil {
			return epNone, nil, bodyError(err)
		}
		return epNone, putBalloon{b}, nil
	case "mmds":
		if id == "config" {
			return epNone, unsupported{"MMDS"}, nil
		}
		return epPutMMDS, unsupported{"MMDS"}, nil
	case "snapshot":
		return parseSnapshot(method, path, id, body) // snapshot.go
	}
	return epNone, nil, invalidPath(method, path)
}

func parsePatch(method, path, head, id string, body []byte) (endpoint, action, *fault) {
	switch head {
	case "machine-config":
		var b machineConfigPatch
		if err := decodeBody(body, &b); err != nil {
			return epPatchMachine, nil, bodyError(err)
		}
		if b.empty() {
			return epPatchMachine, nil, badRequest(msgEmptyPatch)
		}
		return epPatchMachine, updateMachineConfig{b}, nil
	case "drives":
		if f := checkID(id); f != nil {
			return epPatchDrive, nil, f
		}
		var d drivePatch
		if err := decodeBody(body, &d); err != nil {
			return epPatchDrive, nil, bodyError(err)
		}
		if d.DriveID != id {
			return epPatchDrive, nil, badRequest(msgIDMismatch)
		}
		return epPatchDrive, patchDrive{d}, nil
	case "network-interfaces":
		if f := checkID(id); f != nil {
			return epPatchNetwork, nil, f
		}
		var n networkInterfacePatch
		if err := decodeBody(body, &n); err != nil {
			return epPatchNetwork, nil, bodyError(err)
		}
		if n.IfaceID != id {
			return epPatchNetwork, nil, badRequest("The id from the path [%s] does not match the id from the body [%s]!", id, n.IfaceID)
		}
		return epPatchNetwork, patchNetwork{n}, nil
	case "balloon":
		if id == "statistics" {
			var b balloonStatsPatch
			if err := decodeBody(body, &b); err != nil {
				return epNone, nil, bodyError(err)
			}
			return epNone, patchBalloonStats{b}, nil
		}
		var b balloonPatch
		if err := decodeBody(body, &b); err != nil {
			return epNone, nil, bodyError(err)
		}
		return epNone, patchBalloon{b}, nil
	case "vm":
		var b vmStateBody
		if err := decodeBody(body, &b); err != nil {
			return epNone, nil, bodyError(err)
		}
		switch b.State {
		case "Paused":
			return epNone, pauseVM{}, nil
		case "Resumed":
			return epNone, resumeVM{}, nil
		}
		return epNone, nil, bodyError(unknownVariant(b.State, "Paused", "Resumed"))
	case "mmds":
		return epPatchMMDS, unsupported{"MMDS"}, nil
	}
	return epNone, nil, invalidPath(method, path)
}

// parseActionType maps PUT /actions' action_type to its action.
func parseActionType(t string) (action, *fault) {
	switch t {
	case "InstanceStart":
		return startInstance{}, nil
	case "SendCtrlAltDel":
		return sendCtrlAltDel{}, nil
	case "FlushMetrics":
		return flushMetrics{}, nil
	}
	return nil, bodyError(unknownVariant(t, "FlushMetrics", "InstanceStart", "SendCtrlAltDel"))
}

// pathTokens splits a path as Firecracker does: leading slashes dropped,
// then split on '/', a trailing empty token dropped.
func pathTokens(path string) []string {
	path = strings.TrimLeft(path, "/")
	if path == "" {
		return nil
	}
	tokens := strings.Split(path, "/")
	if tokens[len(tokens)-1] == "" {
		tokens = tokens[:len(tokens)-1]
	}
	return tokens
}

// checkID accepts a resource ID of letters, digits and underscores.
func checkID(id string) *fault {
	if id == "" {
		return badRequest(msgEmptyID)
	}
	for _, r := range id {
		if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return badRequest(msgInvalidID)
		}
	}
	return nil
}

func invalidPath(method, path string) *fault {
	return badRequest("Invalid request method and/or path: %s %s.", sanitize(method), sanitize(path))
}

// sanitize keeps request-supplied text printable and short in messages.
func sanitize(s string) string {
	const max = 256
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}
