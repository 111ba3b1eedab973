// Package testutil holds helpers shared by tests that need real host
// resources. A test that needs /dev/kvm or a guest kernel skips with a clear
// reason on a machine without them, but fails under CI=true: CI must never
// pass by skipping the real thing.
package testutil

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips t (or fails it under CI) because a resource is missing.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("required under CI=true: "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// RequireKVM skips or fails t when /dev/kvm cannot be opened read-write.
func RequireKVM(t testing.TB) {
	t.Helper()
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		Unavailable(t, "/dev/kvm is not usable here: %v", err)
		return
	}
	unix.Close(fd)
}
