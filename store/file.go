package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/simgate/simgate"
)

// The database file is watched from outside SQLite, for what SQLite cannot
// see: a file deleted or replaced under a running process (it keeps writing
// into the deleted inode, and the next start creates an empty database), and
// a volume wiped between two starts.

// ErrDatabaseMissing is matched (errors.Is) by Open's error when the
// database file is gone but its marker says simgate created it: a wiped or
// wrong volume, not a first start. Options.Create makes a new one anyway.
var ErrDatabaseMissing = errors.New("the database file is missing")

// ErrDatabaseReplaced is matched by the errors of every write once the
// database file was deleted or replaced while simgate ran.
var ErrDatabaseReplaced = errors.New("the database file was deleted or replaced while simgate ran")

// FileCheckInterval is how often an open database checks that its file is
// still the one it opened.
const FileCheckInterval = 2 * time.Second

// markerPath is the file that records that simgate created the database at
// path. It is hidden, and named so that removing "simgate.db*" leaves it.
func markerPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".created")
}

// checkCreate decides whether a missing database file at abs may be
// created: on the first start, or when create is set (simgate migrate).
func checkCreate(abs string, create bool) error {
	if _, err := os.Stat(abs); err == nil || !errors.Is(err, os.ErrNotExist) {
		return nil // there, or an error opening it will report
	}
	b, err := os.ReadFile(markerPath(abs))
	if err != nil || create {
		return nil // the first start, or told to
	}
	return fmt.Errorf("%w: %s is gone, but %s says simgate created it (%s): was the volume wiped or replaced? "+
		"Restore the database from a backup, or run simgate migrate to start an empty one",
		ErrDatabaseMissing, abs, markerPath(abs), strings.TrimSpace(string(b)))
}

// writeMarker records that the database at abs exists (once).
func writeMarker(abs string, now time.Time) error {
	m := markerPath(abs)
	if _, err := os.Stat(m); err == nil {
		return nil
	}
	return os.WriteFile(m, []byte("created "+now.UTC().Format(time.RFC3339)+" for "+abs+"\n"), 0o600)
}

// fileID identifies a file: its device and inode.
type fileID struct{ dev, ino uint64 }

func statID(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, fmt.Errorf("cannot identify %s", path)
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, nil
}

// fileGuard checks, every FileCheckInterval, that the database path still
// names the file that was opened. Once it does not, every write fails with
// ErrDatabaseReplaced (CodeUnavailable), so that nothing is accepted into a
// file that is gone; the process must be restarted. It owns one goroutine,
// stopped by close.
type fileGuard struct {
	path   string
	id     fileID
	lost   atomic.Pointer[error]
	logger func(msg string, args ...any)
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func newFileGuard(path string, logger func(string, ...any)) (*fileGuard, error) {
	id, err := statID(path)
	if err != nil {
		return nil, fmt.Errorf("cannot identify the database file: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &fileGuard{path: path, id: id, logger: logger, stop: cancel}
	g.wg.Add(1)
	go g.run(ctx)
	return g, nil
}

func (g *fileGuard) run(ctx context.Context) {
	defer g.wg.Done()
	t := time.NewTicker(FileCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if g.check() != nil {
				return // it stays lost
			}
		}
	}
}

// check compares the path with the file opened, and returns the error that
// every write now gets, or nil.
func (g *fileGuard) check() error {
	if err := g.lost.Load(); err != nil {
		return *err
	}
	id, err := statID(g.path)
	if err == nil && id == g.id {
		return nil
	}
	why := "replaced by another file"
	if errors.Is(err, os.ErrNotExist) {
		why = "deleted"
	}
	// The *simgate.Error gives clients a 503 with its message.
	var lost error = fmt.Errorf("%w: %w", ErrDatabaseReplaced, simgate.Errorf(simgate.CodeUnavailable,
		"the database file %s was %s while simgate ran; nothing more is accepted: restart simgate", g.path, why))
	if g.lost.CompareAndSwap(nil, &lost) {
		g.logger("the database file was deleted or replaced while simgate ran; writes stopped", "path", g.path, "what", why)
	}
	return *g.lost.Load()
}

func (g *fileGuard) close() {
	g.stop()
	g.wg.Wait()
}
