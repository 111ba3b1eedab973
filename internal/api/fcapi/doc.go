// Package fcapi serves Firecracker's REST API over a Unix socket and reads
// Firecracker's JSON config file, so that tools written for Firecracker
// (firecracker-go-sdk, firectl) can boot and control a Vireo VM.
//
// The package only translates: an HTTP request is parsed into one typed
// action (router.go), preboot actions build a configuration model
// (resources.go) that becomes a vmm.Config at InstanceStart, and runtime
// actions go to the running VM through the Instance interface. The VM
// logic itself stays in internal/vmm.
//
// Wire compatibility follows Firecracker 1.x as firecracker-go-sdk v1.0.0
// speaks it: 204 for a successful PUT or PATCH, 200 with a JSON body for a
// GET, and 400 with {"fault_message": "..."} for anything refused,
// including Firecracker's messages for requests made in the wrong state.
package fcapi
