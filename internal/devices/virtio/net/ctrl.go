package net

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/vireo-vmm/vireo/internal/virtio"
)

// Control queue classes, commands and acknowledgements (virtio 1.2,
// 5.1.6.5).
const (
	ctrlClassMQ            = 4 // VIRTIO_NET_CTRL_MQ
	ctrlMQVQPairsSet       = 0 // VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET
	ctrlClassGuestOffloads = 5 // VIRTIO_NET_CTRL_GUEST_OFFLOADS
	ctrlGuestOffloadsSet   = 0 // VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET

	ctrlOK  = 0 // VIRTIO_NET_OK
	ctrlErr = 1 // VIRTIO_NET_ERR

	// maxCtrlData bounds a command's data: the largest known command
	// (GUEST_OFFLOADS_SET) carries 8 bytes.
	maxCtrlData = 8
)

// ErrCtrl reports a control command the device refused.
var ErrCtrl = errors.New("net: control command refused")

// ctrlQueue serves the control queue on its own worker.
type ctrlQueue struct {
	dev      *Device
	q        *virtio.Queue
	chain    *virtio.DescriptorChain
	irq      virtio.Interrupt
	maxPairs int    // queue pairs the driver set up
	features uint64 // negotiated
}

// handle serves every command in the queue; it runs on the control worker.
func (c *ctrlQueue) handle(int) (time.Duration, error) {
	for {
		ok, err := c.q.Next(c.chain)
		if errors.Is(err, virtio.ErrBadChain) {
			c.dev.log.Debug("virtio-net: dropping a malformed control request", "err", err)
			if err := c.q.AddUsed(c.chain.Head(), 0); err != nil {
				return 0, err
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		if err := c.q.AddUsed(c.chain.Head(), c.serve()); err != nil {
			return 0, err
		}
	}
	return 0, c.irq.Used(c.q)
}

// serve runs the command in c.chain, writes its acknowledgement and
// returns the number of bytes written.
func (c *ctrlQueue) serve() uint32 {
	if c.chain.WritableLen() < 1 {
		c.dev.log.Debug("virtio-net: control request without room for the acknowledgement")
		return 0
	}
	ack := byte(ctrlOK)
	if err := c.run(); err != nil {
		c.dev.log.Debug("virtio-net: control command refused", "err", err)
		ack = ctrlErr
	}
	if _, err := c.chain.WriteAt([]byte{ack}, 0); err != nil {
		return 0
	}
	return c.chain.Written()
}

// run decodes and applies one command.
func (c *ctrlQueue) run() error {
	var hdr [2]byte
	if n, _ := c.chain.Read(hdr[:]); n != len(hdr) {
		return fmt.Errorf("%w: %d-byte command header", ErrCtrl, n)
	}
	class, cmd := hdr[0], hdr[1]
	size := c.chain.Remaining()
	if size > maxCtrlData {
		return fmt.Errorf("%w: class %d command %d with %d bytes of data", ErrCtrl, class, cmd, size)
	}
	var data [maxCtrlData]byte
	c.chain.Read(data[:size])
	switch {
	case class == ctrlClassMQ && cmd == ctrlMQVQPairsSet:
		if c.features&FeatureMQ == 0 {
			return fmt.Errorf("%w: VQ_PAIRS_SET without VIRTIO_NET_F_MQ", ErrCtrl)
		}
		if size != 2 {
			return fmt.Errorf("%w: VQ_PAIRS_SET with %d bytes of data, want 2", ErrCtrl, size)
		}
		n := int(binary.LittleEndian.Uint16(data[:]))
		if n < 1 || n > c.maxPairs {
			return fmt.Errorf("%w: VQ_PAIRS_SET %d, want 1 to %d", ErrCtrl, n, c.maxPairs)
		}
		return c.dev.setPairs(n)
	case class == ctrlClassGuestOffloads && cmd == ctrlGuestOffloadsSet:
		if c.features&FeatureCtrlGuestOffloads == 0 {
			return fmt.Errorf("%w: GUEST_OFFLOADS_SET without VIRTIO_NET_F_CTRL_GUEST_OFFLOADS", ErrCtrl)
		}
		if size != 8 {
			return fmt.Errorf("%w: GUEST_OFFLOADS_SET with %d bytes of data, want 8", ErrCtrl, size)
		}
		o := binary.LittleEndian.Uint64(data[:])
		if extra := o &^ (c.features & guestOffloads); extra != 0 {
			return fmt.Errorf("%w: GUEST_OFFLOADS_SET %#x enables offloads that were not negotiated (%#x)", ErrCtrl, o, extra)
		}
		return c.dev.setOffloads(o)
	}
	return fmt.Errorf("%w: unsupported class %d command %d", ErrCtrl, class, cmd)
}
