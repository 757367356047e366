package txn

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/simgate/simgate"
)

// Checkpoints copy the pages of the WAL back into the database file, so
// that the WAL can start over. SQLite's automatic checkpoint (switched off,
// see "PRAGMAs" in docs/STORAGE.md) would run
// inside the COMMIT that passes 1 000 pages, holding up every writer queued
// behind it for the copy and an fsync of the database file. The
// checkpointer runs them on a connection of its own instead, after commits,
// while the writer goes on: a PASSIVE checkpoint takes no lock that the
// writer or the readers need.
//
// A passive checkpoint copies the frames committed when it started, and the
// WAL starts over only when a transaction begins with every frame copied.
// Writes that never pause would keep that from happening, so once the WAL
// holds walLimitFrames the checkpointer takes the writer, commits the open
// batch and copies the rest (little, as the passive runs copied most of it)
// before letting writers on.
const (
	// checkpointDelay is how long after a commit the checkpointer waits,
	// so that one checkpoint covers the commits of a burst.
	checkpointDelay = 100 * time.Millisecond
	// stuckRetry is how often the checkpointer tries again while the WAL
	// is stuck: no write commits then, so no commit wakes it.
	stuckRetry = time.Second
	// holdTimeout is how long the checkpointer waits to take the writer: the
	// store's busy timeout (busyTimeout in store/store.go).
	holdTimeout = 5 * time.Second
)

var (
	// walLimitFrames is the WAL size, in pages, past which a checkpoint
	// holds the writer until it has copied everything.
	walLimitFrames = 4096
	// walBound is the size of a WAL file whose last checkpoint failed past
	// which writes are refused and readiness fails: the database file is
	// read-only or immutable, say, and the WAL would grow without bound,
	// then be lost.
	walBound int64 = 64 << 20
)

// Checkpointer owns the checkpoint connection and its goroutine.
type Checkpointer struct {
	db      *sql.DB // one connection
	w       *Writer
	walPath string
	logf    func(msg string, args ...any)
	once    sync.Once
	stop    chan struct{}
	done    chan struct{}
	signal  <-chan struct{} // the writer's commits
}

// NewCheckpointer starts a goroutine that checkpoints the WAL at walPath,
// which w writes, after w's commits. db is a pool of its own on the same
// file, limited to one connection; Close closes it. It takes the place of
// SQLite's automatic checkpoint, which the connections of w's pool should
// have switched off (PRAGMA wal_autocheckpoint = 0). Failures are logged
// with logf. While the WAL is stuck, w.Begin fails with the error that says
// so.
func NewCheckpointer(db *sql.DB, w *Writer, walPath string, logf func(msg string, args ...any)) *Checkpointer {
	c := &Checkpointer{db: db, w: w, walPath: walPath, logf: logf, stop: make(chan struct{}), done: make(chan struct{}), signal: w.committed}
	go c.run()
	return c
}

// run checkpoints after commits, and every stuckRetry while the WAL is
// stuck, until Close.
func (c *Checkpointer) run() {
	defer close(c.done)
	t := time.NewTimer(0)
	<-t.C
	for {
		var retry <-chan time.Time
		if c.w.stuck.Load() != nil {
			t.Reset(stuckRetry)
			retry = t.C
		}
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-c.signal:
			t.Stop() // no stale tick after Stop (Go 1.23 timers)
		case <-retry:
		}
		t.Reset(checkpointDelay)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-t.C:
		}
		frames, _, err := c.checkpoint()
		if err != nil {
			c.logf("cannot checkpoint the WAL", "error", err)
			// SQLite may give up on the connection's file after a failed
			// write; the next checkpoint opens a fresh one.
			c.db.SetMaxIdleConns(0)
			c.db.SetMaxIdleConns(1)
		} else if frames >= walLimitFrames {
			if err := c.checkpointHoldingWriter(); err != nil {
				c.logf("cannot checkpoint the WAL", "error", err, "frames", frames)
			}
		}
		c.assess(err)
	}
}

// checkpoint runs a passive checkpoint and returns the number of frames in
// the WAL and how many of them it copied into the database file.
func (c *Checkpointer) checkpoint() (frames, copied int, err error) {
	var busy int
	err = c.db.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	return frames, copied, err
}

// assess marks the WAL stuck when its checkpoint failed while the WAL file
// is larger than walBound; a checkpoint that ran clears that. A checkpoint
// that copied less than the WAL holds, without an error, is not stuck:
// readers still use the frames it left, and a later one copies them.
func (c *Checkpointer) assess(err error) {
	if err == nil {
		if c.w.stuck.Swap(nil) != nil {
			c.logf("the WAL is checkpointed again; writes go on", "path", c.walPath)
		}
		return
	}
	fi, serr := os.Stat(c.walPath)
	if serr != nil || fi.Size() <= walBound || c.w.stuck.Load() != nil {
		return
	}
	var stuck error = simgate.Errorf(simgate.CodeUnavailable,
		"the database's WAL has grown to %d MiB and cannot be copied into the database file (%v): is the file read-only or immutable? Nothing more is accepted until it can be",
		fi.Size()>>20, err)
	c.w.stuck.Store(&stuck)
	c.logf("the WAL cannot be checkpointed; writes stopped", "path", c.walPath, "size", fi.Size(), "error", err)
}

// stuckErr is the error writes get while the WAL is stuck, or nil.
func (w *Writer) stuckErr() error {
	if err := w.stuck.Load(); err != nil {
		return *err
	}
	return nil
}

// checkpointHoldingWriter commits the open batch and checkpoints while no
// write can start, so that the next one starts the WAL over.
func (c *Checkpointer) checkpointHoldingWriter() error {
	ctx, cancel := context.WithTimeout(context.Background(), holdTimeout)
	defer cancel()
	if err := c.w.acquire(ctx); err != nil {
		return fmt.Errorf("cannot take the writer: %w", err)
	}
	defer c.w.leave()
	c.w.endBatch()
	_, _, err := c.checkpoint()
	return err
}

// Close stops the checkpointer and closes its connection. It may be called
// more than once.
func (c *Checkpointer) Close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}
