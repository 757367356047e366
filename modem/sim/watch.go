package sim

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watcher tells modems when a client opens or closes their device. A pty
// master sees nothing of that while the sim keeps a slave descriptor open,
// so the sim watches the slave's /dev/pts node with inotify (IN_OPEN,
// IN_CLOSE). One inotify instance serves the whole network, as instances
// are a scarce per-user resource (128 by default).
type watcher struct {
	f  *os.File
	rc syscall.RawConn

	// mu serialises reading events and dispatching them, so that a modem
	// that drains pending events before handling input (see drain) sees a
	// close that happened before the input was written.
	mu   sync.Mutex
	mods map[int]*Modem // by watch descriptor
	buf  []byte
}

func newWatcher() (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "inotify")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &watcher{f: f, rc: rc, mods: map[int]*Modem{}, buf: make([]byte, 64*(unix.SizeofInotifyEvent+unix.PathMax))}, nil
}

func (w *watcher) add(path string, m *Modem) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var wd int
	var werr error
	err := w.rc.Control(func(fd uintptr) {
		wd, werr = unix.InotifyAddWatch(int(fd), path, unix.IN_OPEN|unix.IN_CLOSE)
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return -1, err
	}
	w.mods[wd] = m
	return wd, nil
}

func (w *watcher) remove(wd int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.mods, wd)
	_ = w.rc.Control(func(fd uintptr) { _, _ = unix.InotifyRmWatch(int(fd), uint32(wd)) })
}

// drain reads and dispatches the events already queued, without blocking.
func (w *watcher) drain() {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.rc.Control(func(fd uintptr) {
		for w.readLocked(int(fd)) {
		}
	})
}

// run dispatches events as they come until the watcher is closed.
func (w *watcher) run() {
	for {
		err := w.rc.Read(func(fd uintptr) bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.readLocked(int(fd))
		})
		if err != nil {
			return
		}
	}
}

// readLocked reads one batch of events and dispatches them. It returns false
// when nothing was there to read.
func (w *watcher) readLocked(fd int) bool {
	n, err := unix.Read(fd, w.buf)
	if err != nil || n <= 0 {
		return errors.Is(err, unix.EINTR)
	}
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&w.buf[off]))
		off += unix.SizeofInotifyEvent + int(ev.Len)
		if m := w.mods[int(ev.Wd)]; m != nil {
			m.deviceEvent(int(ev.Wd), ev.Mask)
		}
	}
	return true
}

func (w *watcher) close() error { return w.f.Close() }

// openers counts the descriptors open on the pty slave in the processes
// this user can see, less the sim's own slave descriptor. It is how a modem
// checks the count it keeps from events: inotify merges an event into the
// one queued before it when both are the same and unread, so a client that
// opens the device twice in a row (the modem driver does, for its lock and
// for the port) and closes both can leave one open unmatched. Descriptors
// held by processes of other users are not seen.
func openers(slave *os.File) (int, error) {
	var dev struct {
		rdev uint64
		fd   int
	}
	err := control(slave, func(fd int) error {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		dev.rdev, dev.fd = st.Rdev, fd
		return nil
	})
	if err != nil {
		return 0, err
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	self, own := strconv.Itoa(os.Getpid()), strconv.Itoa(dev.fd)
	n := 0
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue // gone, or another user's
		}
		for _, f := range fds {
			if p.Name() == self && f.Name() == own {
				continue
			}
			var st unix.Stat_t
			// stat follows the link to the device without opening it, so
			// it raises no inotify event of its own.
			if unix.Stat(filepath.Join("/proc", p.Name(), "fd", f.Name()), &st) != nil {
				continue
			}
			if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == dev.rdev {
				n++
			}
		}
	}
	return n, nil
}
