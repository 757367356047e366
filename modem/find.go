package modem

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ports is what the modems of a pool share about serial ports: which modem
// holds which port (claims), so that no modem probes a port another one is
// using, and the identities found behind the candidate ports (find), so
// that modems bound by IMEI or ICCID are matched to ports in one pass
// instead of each probing every port (two modems probing each other's port
// at the same moment, on the same backoff, locked each other out).
type ports struct {
	mu     sync.Mutex
	owners map[string]portClaim // by resolved path

	// scan serialises the searches; seen is what the last one found.
	scan   sync.Mutex
	seen   map[string]portSeen // by path as globbed
	seenAt time.Time
}

// portClaim is a port held by a modem: the resolved path it was claimed
// under and the device number then, kept so that a release frees exactly
// that, even after the link it was found by is gone.
type portClaim struct {
	key   string
	rdev  uint64
	owner *Modem
}

// portSeen is what a search found behind one port.
type portSeen struct {
	imei, iccid string
	err         error // why it is no usable modem; nil when it answered
}

func newPorts() *ports { return &ports{owners: map[string]portClaim{}, seen: map[string]portSeen{}} }

// claim gives the port at path to m unless another modem holds it.
func (ps *ports) claim(path string, m *Modem) (portClaim, bool) {
	cl := portClaim{key: resolve(path), rdev: rdevOf(path), owner: m}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if o, ok := ps.owners[cl.key]; ok && o.owner != m {
		if o.rdev == cl.rdev || o.rdev == 0 || cl.rdev == 0 {
			return portClaim{}, false
		}
		// The same path now names another device: the holder's claim is
		// of a device that is gone, and its release will free only that.
	}
	ps.owners[cl.key] = cl
	return cl, true
}

// release frees cl, if it is still the claim on its port.
func (ps *ports) release(cl portClaim) {
	if cl.owner == nil {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if o, ok := ps.owners[cl.key]; ok && o == cl {
		delete(ps.owners, cl.key)
	}
}

// releaseAll frees every claim of m (a reset starts from nothing).
func (ps *ports) releaseAll(m *Modem) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for k, o := range ps.owners {
		if o.owner == m {
			delete(ps.owners, k)
		}
	}
}

// held reports whether a modem other than m holds the port at path.
func (ps *ports) held(path string, m *Modem) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	o, ok := ps.owners[resolve(path)]
	return ok && o.owner != m
}

// findFresh is how long the result of a search answers other modems: modems
// that start together share one search.
const findFresh = 2 * time.Second

// find returns the candidate port behind which the modem with imei (or
// iccid) answered, searching the ports no modem holds when the last search
// is older than findFresh. A search opens each such port once, reads the
// modem's identity there and closes it again.
func (ps *ports) find(ctx context.Context, m *Modem, globs []string, imei, iccid string) (string, error) {
	ps.scan.Lock()
	defer ps.scan.Unlock()
	if time.Since(ps.seenAt) > findFresh {
		ps.search(ctx, m, globs, iccid != "")
	}
	var notAnswering []string
	for _, p := range expand(globs) {
		s, ok := ps.seen[p]
		if !ok || ps.held(p, m) {
			continue
		}
		switch {
		case s.err != nil && errors.Is(s.err, ErrTimeout):
			notAnswering = append(notAnswering, p)
		case s.err != nil:
		case imei != "" && s.imei == imei, imei == "" && iccid != "" && s.iccid == NormalizeICCID(iccid):
			delete(ps.seen, p) // the modem opens it now; what is there may change
			return p, nil
		}
	}
	if len(notAnswering) > 0 {
		return "", fmt.Errorf("%w: a device at %s is present but not answering", ErrNotAnswering, strings.Join(notAnswering, ", "))
	}
	return "", ErrNotFound
}

// search probes every candidate port that no modem holds. Called with
// ps.scan held.
func (ps *ports) search(ctx context.Context, m *Modem, globs []string, withICCID bool) {
	ps.seen = map[string]portSeen{}
	for _, p := range expand(globs) {
		if ctx.Err() != nil {
			return
		}
		if ps.held(p, m) {
			continue
		}
		ps.seen[p] = probeIdentity(ctx, p, m.opts.CommandTimeout, withICCID)
	}
	ps.seenAt = time.Now()
}

// probeIdentity opens path and reads the IMEI (and the ICCID) of the modem
// there, changing nothing but echo and the error format.
func probeIdentity(ctx context.Context, path string, timeout time.Duration, withICCID bool) portSeen {
	c, err := openConn(path, 0, timeout)
	if err != nil {
		return portSeen{err: err}
	}
	defer c.close()
	stop := context.AfterFunc(ctx, func() { c.interrupt() })
	defer stop()
	if err := c.handshake(ctx); err != nil {
		return portSeen{err: err}
	}
	id, err := c.identity(ctx, false)
	if err != nil {
		return portSeen{err: err}
	}
	s := portSeen{imei: id.IMEI}
	if withICCID {
		s.iccid = c.iccid(ctx)
	}
	return s
}

// forget drops what the last search found: a device came or went.
func (ps *ports) forget() {
	ps.scan.Lock()
	ps.seenAt = time.Time{}
	ps.scan.Unlock()
}

func resolve(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return filepath.Clean(path)
}

// rdevOf returns the device number of the character device at path, or 0.
func rdevOf(path string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return 0
	}
	return st.Rdev
}

// expand turns paths and globs into existing paths, in order, without
// duplicates (by resolved path). A plain path is kept even when it does not
// exist yet, so that opening it reports why.
func expand(globs []string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		k := resolve(p)
		if seen[k] {
			return
		}
		seen[k] = true
		out = append(out, p)
	}
	for _, g := range globs {
		if !strings.ContainsAny(g, "*?[") {
			add(g)
			continue
		}
		ms, err := filepath.Glob(g)
		if err != nil {
			continue
		}
		sort.Strings(ms)
		for _, p := range ms {
			add(p)
		}
	}
	return out
}

// deviceWatch tells when a device appears or goes in the directories of the
// candidate ports, with inotify: a modem waiting to reconnect, or in
// quarantine, tries again at once when its device may be back. One
// goroutine, owned by the Pool, reads the events.
type deviceWatch struct {
	f     *os.File
	dirs  map[string]bool
	globs []string
}

// newDeviceWatch watches the directories of globs (or, while one does not
// exist, the nearest that does: /dev/serial/by-id appears with the first
// USB serial device).
func newDeviceWatch(globs []string) (*deviceWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("cannot watch devices: %w", err)
	}
	w := &deviceWatch{f: os.NewFile(uintptr(fd), "inotify"), dirs: map[string]bool{}, globs: globs}
	w.addDirs()
	return w, nil
}

// addDirs watches each glob's directory, or its nearest existing parent.
func (w *deviceWatch) addDirs() {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return
	}
	for _, g := range w.globs {
		d := filepath.Dir(g)
		for d != "/" && d != "." && !exists(d) {
			d = filepath.Dir(d)
		}
		if w.dirs[d] {
			continue
		}
		_ = rc.Control(func(fd uintptr) {
			if _, err := unix.InotifyAddWatch(int(fd), d, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_ATTRIB|unix.IN_DELETE|unix.IN_ONLYDIR); err == nil {
				w.dirs[d] = true
			}
		})
	}
}

// run calls changed after each batch of events until ctx is done.
func (w *deviceWatch) run(ctx context.Context, changed func()) {
	stop := context.AfterFunc(ctx, func() { w.f.Close() })
	defer stop()
	buf := make([]byte, 16*(unix.SizeofInotifyEvent+unix.PathMax))
	for {
		if _, err := w.f.Read(buf); err != nil {
			return // closed
		}
		w.addDirs() // a directory that appeared
		changed()
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
