package initramfs

// BootMarker is the line DefaultInit prints on the console once user space
// is up; tests and benchmarks wait for it.
const BootMarker = "VIREO-BOOT-OK"

// DefaultInit is the /init of the default guest, run as PID 1 by busybox sh.
//
// Guest kernel code can be very slow (on emulating hosts a fork+exec costs
// ~165 ms), so it uses shell builtins wherever it can: one external command
// (mount -a, reading the archive's /etc/fstab) runs before the marker. It
// is run again while /proc, /sys or /dev is missing: on the development
// host a program started while the guest is busy sometimes faults as it
// starts (under QEMU too), and without /proc busybox's shell cannot run
// its applets.
// Then it runs each executable in /etc/vireo-init.d in name order (tests put
// theirs there with Options.Extra; a script that ends with `reboot -f` stops
// the VM without starting a shell), and starts a shell on the console with
// the console as its controlling terminal. When that shell exits, the guest
// reboots, which ends the VM.
const DefaultInit = `#!/bin/sh
# PID 1 of the Vireo test guest.
export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/root
for try in 1 2 3 4 5; do
	[ -e /proc/self ] && [ -d /sys/kernel ] && [ -e /dev/null ] && break
	mount -a 2>/dev/null
done
echo ` + BootMarker + `
echo vireo >/proc/sys/kernel/hostname
for f in /etc/vireo-init.d/*; do
	[ -f "$f" ] && [ -x "$f" ] && "$f"
done
cd /root
export PS1='\w # '
setsid cttyhack sh
reboot -f
`

// fstab is mounted by DefaultInit with one `mount -a`.
const fstab = `proc /proc proc nosuid,nodev,noexec 0 0
sysfs /sys sysfs nosuid,nodev,noexec 0 0
devtmpfs /dev devtmpfs nosuid 0 0
`

const passwd = "root:x:0:0:root:/root:/bin/sh\n"

const group = "root:x:0:\n"
