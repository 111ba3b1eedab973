package mmio

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-vmm/vireo/internal/bus"
	"github.com/vireo-vmm/vireo/internal/guestmem"
	"github.com/vireo-vmm/vireo/internal/kvm"
	"github.com/vireo-vmm/vireo/internal/testutil"
	"github.com/vireo-vmm/vireo/internal/vcpu"
)

// donePort counts writes to the guest's "done" port.
type donePort struct{ n atomic.Int32 }

func (d *donePort) Read(uint64, []byte)  {}
func (d *donePort) Write(uint64, []byte) { d.n.Add(1) }

// TestIOEventFDOnKVM runs real guest code (real mode) that writes queue
// indices 1 and 0 to QueueNotify of a window attached to a KVM VM, with
// the window deliberately not on the MMIO bus: the notifications can only
// arrive through the ioeventfds, each on its own queue's eventfd.
func TestIOEventFDOnKVM(t *testing.T) {
	testutil.RequireKVM(t)
	sys, err := kvm.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
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
	defer mem.Close()
	r := &mem.Regions()[0]
	if err := vm.SetUserMemoryRegion(0, 0, 0, r.Size, r.HostAddr()); err != nil {
		t.Fatal(err)
	}
	code := []byte{
		0xb8, 0x00, 0x20, // mov ax, 0x2000
		0x8e, 0xd8, // mov ds, ax  (window at 0x20000, outside RAM)
		0x66, 0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1
		0x66, 0xa3, 0x50, 0x00, // mov [0x50], eax
		0x66, 0xb8, 0x00, 0x00, 0x00, 0x00, // mov eax, 0
		0x66, 0xa3, 0x50, 0x00, // mov [0x50], eax
		0xe6, 0x10, // out 0x10, al
		0xf4,       // hlt
		0xeb, 0xfd, // jmp hlt
	}
	mem.WriteAt(code, 0x1000)

	dev := &fakeDevice{t: t, features: testFeatures, sizes: []uint16{16, 8}}
	tr, err := New(dev, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Attach(vm, 0x20000, 5); err != nil {
		t.Fatal(err)
	}

	var pio, mmioBus bus.Bus
	done := &donePort{}
	pio.Insert(done, 0x10, 1)
	v, err := vcpu.Start(vcpu.Config{
		ID: 0, VM: vm, PIO: &pio, MMIO: &mmioBus, Events: make(chan vcpu.Event, 1), Mem: mem,
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
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for done.n.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("guest code did not finish")
		}
		time.Sleep(time.Millisecond)
	}
	for i, e := range tr.notify {
		if n, err := e.Drain(); n != 1 || err != nil {
			t.Errorf("queue %d eventfd: %d notifications (%v), want 1", i, n, err)
		}
	}
}
