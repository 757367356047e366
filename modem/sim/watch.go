package sim

import (
	"errors"
	"os"
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
