package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// netns is the benchmark's network namespace: the TAPs live there, so the
// host's own networking is never touched.
type netns struct{ name string }

func newNetns() (*netns, error) {
	ns := &netns{name: fmt.Sprintf("vireo-bench-net-%d", os.Getpid())}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	return ns, nil
}

func (ns *netns) remove() error {
	if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", ns.name, err, out)
	}
	return nil
}

// ip runs `ip -n NS args...`.
func (ns *netns) ip(args ...string) error {
	out, err := exec.Command("ip", append([]string{"-n", ns.name}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// exec runs a program inside the namespace.
func (ns *netns) exec(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...).CombinedOutput()
	return string(out), err
}

// waitLink waits for an interface to appear.
func (ns *netns) waitLink(name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for exec.Command("ip", "-n", ns.name, "link", "show", name).Run() != nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("interface %s did not appear in %s", name, ns.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// do runs fn on this goroutine's thread moved into the namespace, so the
// sockets it creates live there.
func (ns *netns) do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer unix.Close(orig)
	target, err := unix.Open("/run/netns/"+ns.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer func() {
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return fn()
}
