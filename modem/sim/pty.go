package sim

import (
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal and puts its slave side into raw mode, as
// a USB serial port is: no echo by the line discipline, no CR/LF mapping, no
// signals. Without raw mode the slave would echo the modem's own output back
// to it. creack/pty leaves the terminal in cooked mode, so this is done here
// with termios.
func openPTY() (master, slave *os.File, err error) {
	master, slave, err = pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open pty: %w", err)
	}
	// pty.Open calls Fd() on the master, which puts it in blocking mode: a
	// blocked Read would then survive Close and the read goroutine could
	// never be stopped. A non-blocking duplicate goes through the runtime
	// poller, where Close interrupts Read and Write.
	if master, err = pollable(master); err != nil {
		slave.Close()
		return nil, nil, fmt.Errorf("cannot open pty: %w", err)
	}
	if err := control(slave, makeRaw); err != nil {
		master.Close()
		slave.Close()
		return nil, nil, fmt.Errorf("cannot set raw mode on %s: %w", slave.Name(), err)
	}
	return master, slave, nil
}

// control runs fn on f's descriptor without switching f to blocking mode
// (as f.Fd() would).
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// makeRaw is cfmakeraw(3).
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// flushInput discards what the modem wrote that no client read: a USB
// serial driver drops data that arrives while the port is closed.
func flushInput(fd int) error {
	return unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH)
}

// pollable returns a non-blocking duplicate of f and closes f.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	var fd int
	err := control(f, func(old int) error {
		var err error
		fd, err = unix.FcntlInt(uintptr(old), unix.F_DUPFD_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
