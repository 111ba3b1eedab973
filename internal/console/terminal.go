package console

import "golang.org/x/sys/unix"

// isTerminal reports whether fd is a terminal.
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// inForeground reports whether this process may change and read terminal
// fd without being stopped by SIGTTOU or SIGTTIN. A terminal that is not
// our controlling terminal has no process group to compete with.
func inForeground(fd int) bool {
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil {
		return true
	}
	return pgrp == unix.Getpgrp()
}

// makeRaw switches terminal fd to raw input, as QEMU does for
// -nographic: no echo, no line editing, no signals from Ctrl-C or
// Ctrl-Z (they go to the guest), 8-bit characters. Output processing is
// left on so messages the VMM prints to the same terminal keep their line
// endings. It returns the previous settings for restoreTerminal.
func makeRaw(fd int) (*unix.Termios, error) {
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *saved
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP |
		unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return saved, nil
}

// restoreTerminal puts back settings saved by makeRaw.
func restoreTerminal(fd int, saved *unix.Termios) error {
	return unix.IoctlSetTermios(fd, unix.TCSETS, saved)
}
