package rtsyscall

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPpollWakes blocks many goroutines in Ppoll while the garbage
// collector runs, then wakes each through its pipe: a goroutine inside
// the blocking bracket must neither stall the collector nor miss its
// wake-up.
func TestPpollWakes(t *testing.T) {
	const n = 16
	var wg sync.WaitGroup
	pipes := make([][2]int, n)
	errs := make(chan error, n)
	for i := range pipes {
		if err := unix.Pipe2(pipes[i][:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(pipes[i][0])
		defer unix.Close(pipes[i][1])
		wg.Add(1)
		go func(fd int) {
			defer wg.Done()
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			ts := unix.NsecToTimespec(int64(10 * time.Second))
			k, err := Ppoll(fds, &ts)
			if err == nil && (k != 1 || fds[0].Revents&unix.POLLIN == 0) {
				err = unix.EIO
			}
			errs <- err
		}(pipes[i][0])
	}
	for range 5 {
		runtime.GC()
		time.Sleep(2 * time.Millisecond)
	}
	for _, p := range pipes {
		unix.Write(p[1], []byte{1})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestPpollTimeout(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	fds := []unix.PollFd{{Fd: int32(p[0]), Events: unix.POLLIN}}
	for _, d := range []time.Duration{0, 20 * time.Millisecond} {
		ts := unix.NsecToTimespec(int64(d))
		start := time.Now()
		if k, err := Ppoll(fds, &ts); k != 0 || err != nil {
			t.Errorf("timeout %v: %d, %v", d, k, err)
		}
		if time.Since(start) < d {
			t.Errorf("timeout %v returned after %v", d, time.Since(start))
		}
	}
}

func TestEpollWait(t *testing.T) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		t.Fatal(err)
	}
	evs := make([]unix.EpollEvent, 4)
	if k, err := EpollWait(ep, evs, 10); k != 0 || err != nil {
		t.Fatalf("nothing ready: %d, %v", k, err)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}()
	if k, err := EpollWait(ep, evs, 5000); k != 1 || err != nil || evs[0].Fd != int32(efd) {
		t.Fatalf("eventfd ready: %d, %v, %+v", k, err, evs[0])
	}
	if k, err := EpollWait(ep, evs, 0); k != 1 || err != nil {
		t.Fatalf("zero timeout, still ready: %d, %v", k, err)
	}
}
