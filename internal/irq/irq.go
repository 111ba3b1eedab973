// Package irq models interrupt lines from devices to the in-kernel irqchip.
//
// Devices receive one of these interfaces and nothing else of the machine:
// a Line for level-style sources (legacy ISA devices, whose state is
// mirrored with KVM_IRQ_LINE) or a Trigger for edge/message sources
// (virtio interrupts delivered through an irqfd).
package irq

// Line is a level-sensitive interrupt line.
type Line interface {
	SetLevel(high bool) error
}

// Trigger raises one edge-triggered interrupt.
type Trigger interface {
	Trigger() error
}

// LineFunc adapts a function to Line.
type LineFunc func(high bool) error

// SetLevel calls f(high).
func (f LineFunc) SetLevel(high bool) error { return f(high) }

// TriggerFunc adapts a function to Trigger.
type TriggerFunc func() error

// Trigger calls f().
func (f TriggerFunc) Trigger() error { return f() }

// Nop is a Line and Trigger that does nothing (for tests and disconnected devices).
type Nop struct{}

// SetLevel does nothing.
func (Nop) SetLevel(bool) error { return nil }

// Trigger does nothing.
func (Nop) Trigger() error { return nil }
