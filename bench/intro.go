package main

// intro starts a new output file; the generated section follows it.
const intro = `# Vireo benchmarks

Vireo measured beside QEMU by ` + "`make bench`" + ` (the program is in
[bench/](bench/)). Both VMMs boot the same kernel, initramfs, command line,
memory size and vCPU count, alternately in one run; each result is the
median over the iterations, with the minimum and maximum beside it.

What is measured:

- **(a) Process start to the first guest instruction.** The guest is a tiny
  ELF written at run time: a Xen PVH entry note and, at 1 MiB, three
  instructions that write ` + "`!`" + ` to the serial port (COM1) and then halt.
  The clock runs from just before exec to that byte arriving on the VMM's
  stdout. QEMU runs its firmware's PVH loader on the way: that is part of
  its real start-up cost.
- **(b) Process start to the first user-space marker.** The project's guest
  kernel (vmlinux, entered through PVH) with the default busybox initramfs,
  whose /init prints ` + "`VIREO-BOOT-OK`" + ` on the serial console right after
  mounting /proc, /sys and /dev. Boots are compared by this marker, not by
  process exit (QEMU's microvm has no PS/2 controller to reboot through);
  both processes are killed once it has appeared.
- **(c) VMM memory overhead after boot.** About a second after the marker,
  /proc/PID/smaps is read: overhead is the process's resident memory minus
  the resident part of guest RAM (the anonymous mapping exactly as large as
  the guest memory), the way Firecracker's memory-overhead test counts it.

Targets: (a) at most 0.5x QEMU's time, (b) at most 1.0x QEMU's time,
(c) at most 10 MiB of Vireo overhead.

Each section names the host it ran on (` + "`uname -r`" + `, CPU model, ` + "`nproc`" + `).
The development host exposes /dev/kvm through a nested, software-assisted
KVM (kvm_pvm) that runs guest kernel code through KVM's instruction
emulator, about 1 µs per instruction: a Linux boot takes tens of seconds
there instead of a fraction of one on real hardware, and the machine is
shared with other work. Absolute times are context; the Vireo/QEMU ratios
are what matter.
`
