package vcpu

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/bus"
	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/kvm"
	"github.com/vireo-vmm/vireo/internal/testutil"
)

// counter is a port device that counts writes.
type counter struct{ n atomic.Uint64 }

func (c *counter) Read(off uint64, data []byte) {}
func (c *counter) Write(off uint64, data []byte) {
	c.n.Add(1)
}

type rig struct {
	vm     *kvm.VM
	mem    *guestmem.Memory
	pio    bus.Bus
	mmio   bus.Bus
	events chan Event
}

// newRig makes a VM with 64 KiB of RAM holding code at 0x1000, run in real mode.
func newRig(t *testing.T, code []byte) *rig {
	t.Helper()
	testutil.RequireKVM(t)
	sys, err := kvm.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Close() })
	if err := vm.SetTSSAddr(0xfffbd000); err != nil {
		t.Fatal(err)
	}
	if err := vm.CreateIRQChip(); err != nil {
		t.Fatal(err)
	}
	mem, err := guestmem.New([]guestmem.RegionSpec{{GPA: 0, Size: 0x10000}}, guestmem.Backing{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	r := &mem.Regions()[0]
	if err := vm.SetUserMemoryRegion(0, 0, 0, r.Size, r.HostAddr()); err != nil {
		t.Fatal(err)
	}
	mem.WriteAt(code, 0x1000)
	return &rig{vm: vm, mem: mem, events: make(chan Event, 1)}
}

func (r *rig) start(t *testing.T, paused bool) *VCPU {
	t.Helper()
	v, err := Start(Config{
		ID: 0, VM: r.vm, PIO: &r.pio, MMIO: &r.mmio, Events: r.events, Mem: r.mem,
		Setup: func(c *kvm.VCPU) error {
			s, err := c.Sregs()
			if err != nil {
				return err
			}
			s.Cs.Base, s.Cs.Selector = 0, 0
			if err := c.SetSregs(s); err != nil {
				return err
			}
			return c.SetRegs(kvm.Regs{Rip: 0x1000, Rflags: 2})
		},
	}, paused)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Stop)
	return v
}

// loop: out 0x10, al; jmp loop
var outLoop = []byte{0xe6, 0x10, 0xeb, 0xfc}

func TestPauseResumeStop(t *testing.T) {
	r := newRig(t, outLoop)
	var c counter
	r.pio.Insert(&c, 0x10, 1)
	v := r.start(t, true)

	time.Sleep(50 * time.Millisecond)
	if n := c.n.Load(); n != 0 {
		t.Fatalf("a vCPU started paused ran %d exits", n)
	}
	if err := v.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return c.n.Load() > 100 })
	if err := v.Pause(); err != nil {
		t.Fatal(err)
	}
	n1 := c.n.Load()
	time.Sleep(100 * time.Millisecond)
	if n2 := c.n.Load(); n2 != n1 {
		t.Fatalf("paused vCPU kept running: %d -> %d exits", n1, n2)
	}
	// State can be read on the vCPU thread while paused.
	var rip uint64
	if err := v.Do(func(c *kvm.VCPU) error {
		regs, err := c.Regs()
		rip = regs.Rip
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if rip < 0x1000 || rip > 0x1004 {
		t.Errorf("paused at RIP %#x, outside the loop", rip)
	}
	if err := v.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return c.n.Load() > n1+100 })

	// Many pause/resume cycles in a row: no kick is ever lost.
	for i := 0; i < 200; i++ {
		if err := v.Pause(); err != nil {
			t.Fatal(err)
		}
		if err := v.Resume(); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { v.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return: the kick was lost")
	}
	if ev := <-r.events; ev.Kind != ExitStopped {
		t.Errorf("final event %v, want stopped", ev.Kind)
	}
	if err := v.Pause(); err != ErrNotRunning {
		t.Errorf("Pause after Stop: %v", err)
	}
}

// The exit path does not allocate: a guest hammering a port costs no
// allocations per exit.
func TestExitPathDoesNotAllocate(t *testing.T) {
	r := newRig(t, outLoop)
	var c counter
	r.pio.Insert(&c, 0x10, 1)
	r.start(t, false)
	waitFor(t, func() bool { return c.n.Load() > 1000 })
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n0 := c.n.Load()
	time.Sleep(300 * time.Millisecond)
	n1 := c.n.Load()
	runtime.ReadMemStats(&after)
	exits := n1 - n0
	allocs := after.Mallocs - before.Mallocs
	if exits < 1000 {
		t.Fatalf("only %d exits measured", exits)
	}
	// The test's own goroutines allocate a little; the exit path must not.
	if float64(allocs)/float64(exits) > 0.01 {
		t.Errorf("%d allocations over %d exits", allocs, exits)
	}
}

// A guest that triple-faults reports a reset instead of hanging.
func TestTripleFaultReportsReset(t *testing.T) {
	// In 32-bit protected mode with an empty IDT, a divide error can be
	// delivered neither as #DE nor as #DF: the CPU shuts down.
	code := []byte{
		0x31, 0xc9, // xor ecx, ecx
		0xf7, 0xf1, // div ecx
		0xf4, // hlt
	}
	r := newRig(t, code)
	v, err := Start(Config{
		ID: 0, VM: r.vm, PIO: &r.pio, MMIO: &r.mmio, Events: r.events, Mem: r.mem,
		Setup: func(c *kvm.VCPU) error {
			s, err := c.Sregs()
			if err != nil {
				return err
			}
			seg := func(sel uint16, typ uint8) kvm.Segment {
				return kvm.Segment{Limit: 0xffffffff, Selector: sel, Type: typ, Present: 1, S: 1, Db: 1, G: 1}
			}
			s.Cs = seg(0x8, 0xb)
			s.Ds, s.Es, s.Ss, s.Fs, s.Gs = seg(0x10, 3), seg(0x10, 3), seg(0x10, 3), seg(0x10, 3), seg(0x10, 3)
			s.Idt = kvm.DTable{Base: 0x3000, Limit: 0}
			s.Cr0 |= 1 // PE
			if err := c.SetSregs(s); err != nil {
				return err
			}
			return c.SetRegs(kvm.Regs{Rip: 0x1000, Rflags: 2, Rax: 1})
		},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Stop)
	select {
	case ev := <-r.events:
		if ev.Kind != ExitReset {
			t.Fatalf("event %v (%v), want reset", ev.Kind, ev.Err)
		}
		if ev.Err == nil || !strings.Contains(ev.Err.Error(), "triple fault") {
			t.Errorf("reset event does not say triple fault: %v", ev.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event from a triple-faulting guest")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type panicky struct{}

func (panicky) Read(off uint64, data []byte)  {}
func (panicky) Write(off uint64, data []byte) { panic("device bug") }

// A device that panics on the exit path ends the vCPU with an error event;
// the process survives to report it.
func TestDevicePanicBecomesError(t *testing.T) {
	r := newRig(t, outLoop)
	r.pio.Insert(panicky{}, 0x10, 1)
	r.start(t, false)
	select {
	case ev := <-r.events:
		if ev.Kind != ExitError || ev.Err == nil || !strings.Contains(ev.Err.Error(), "device bug") {
			t.Fatalf("event %v %v, want an error naming the panic", ev.Kind, ev.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
}

// State saved from a running vCPU and restored into a new VM continues the
// guest exactly where it stopped.
func TestSaveRestoreContinues(t *testing.T) {
	// inc ax; out 0x10, ax; jmp
	code := []byte{0x40, 0xe7, 0x10, 0xeb, 0xfb}
	r := newRig(t, code)
	var c counter
	r.pio.Insert(&c, 0x10, 2)
	v := r.start(t, false)
	waitFor(t, func() bool { return c.n.Load() > 50 })
	if err := v.Pause(); err != nil {
		t.Fatal(err)
	}
	var st *State
	if err := v.Do(func(cpu *kvm.VCPU) (err error) {
		st, err = SaveState(cpu, []uint32{0x10, 0x174, 0xc0000080})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ax := st.Regs.Rax

	// A second VM with a copy of memory, restored from the state.
	r2 := newRig(t, code)
	var last atomic.Uint64
	r2.pio.Insert(devFunc(func(data []byte) { last.Store(uint64(data[0]) | uint64(data[1])<<8) }), 0x10, 2)
	v2, err := Start(Config{ID: 0, VM: r2.vm, PIO: &r2.pio, MMIO: &r2.mmio, Events: r2.events,
		Setup: func(cpu *kvm.VCPU) error { return RestoreState(cpu, st) }}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Stop()
	waitFor(t, func() bool { return last.Load() != 0 })
	if got := last.Load(); got <= ax&0xffff || got > ax&0xffff+1000 {
		t.Errorf("restored guest wrote AX=%d, saved AX was %d: it did not continue", got, ax&0xffff)
	}
}

type devFunc func(data []byte)

func (f devFunc) Read(off uint64, data []byte)  {}
func (f devFunc) Write(off uint64, data []byte) { f(data) }
