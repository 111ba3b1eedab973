// Package qmp serves the QEMU Machine Protocol, wire-compatible with QEMU
// 7.2, so that QEMU's own tools and client libraries can manage a Vireo VM.
//
// The package has two layers. The protocol layer (framer.go, request.go,
// args.go, wire.go, session.go, server.go) does the framing, capabilities
// negotiation, dispatch and QEMU's error classes and messages. The command
// handlers (commands.go, hmp.go) see bound arguments and the Machine
// interface, which the VMM satisfies through an adapter; they hold no VM
// logic.
//
// Protocol notes, as QEMU behaves:
//   - The server greets each client; until qmp_capabilities succeeds every
//     other command fails with CommandNotFound.
//   - Input is a stream of JSON texts: a text ends where its braces
//     balance, several may arrive in one write and one may span many
//     writes. Output is one JSON object per line, ended by CRLF.
//   - A reply echoes the request's id, whatever JSON value it is.
//   - Events go to every negotiated client, before the reply of the
//     command that caused them.
//
// Limits: one input message may hold at most Options.MaxMessage bytes
// (1 MiB by default; QEMU allows 64 MiB) and 1024 levels of nesting. A
// longer message gets one error reply and the rest of it is read and
// dropped without being stored, so a client cannot make the VMM grow. A
// client that lets more than Options.QueueLen replies and events pile up
// is disconnected when the next event finds its queue full, so a slow
// client delays neither the VM nor other clients.
//
// Differences from QEMU: QEMU's JSON parser also accepts single-quoted
// strings and reports syntax errors in its own words; Vireo takes standard
// JSON only, and a syntax error's text after "JSON parse error, " is Go's.
package qmp
