// Package console is the virtio console device (virtio 1.2, section 5.3):
// ports that carry byte streams between the guest and the host.
//
// A device is used one of two ways:
//
//   - As the guest's console: one port, no multiport feature. Linux makes it
//     hvc0 while the driver probes, so console=hvc0 works from the first
//     user-space instruction. Guest output goes to an io.Writer; host input
//     is offered with Enqueue and held until the guest's console output has
//     begun and settled (see gateSettle): Linux frees data that reaches a
//     console port before it has registered it.
//   - For named channels (VIRTIO_CONSOLE_F_MULTIPORT): ports 1..n, each with a
//     name the guest sees under /sys/class/virtio-ports/*/name (udev links it
//     to /dev/virtio-ports/NAME) and a host Unix socket (Socket). The device
//     announces the ports over the control queues (PORT_ADD, PORT_NAME,
//     CONSOLE_PORT) and signals open and close both ways (PORT_OPEN).
//
// A multiport device may also carry the console on port 0; Linux then
// creates hvc0 only after a round trip over the control queues, possibly
// after it has tried to open /dev/console, so the VMM gives the console a
// device of its own.
//
// Nothing is dropped for lack of a reader: host input waits in the socket
// (or in Enqueue's caller) until the guest has the port open and has posted
// buffers, and guest output stays in the transmit queue until the host side
// takes it. A transmit buffer is returned to the guest only after all its
// bytes were handed to the host.
package console
