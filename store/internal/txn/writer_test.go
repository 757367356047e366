package txn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// openBatchTest opens a database with a table kv for the group-commit tests.
// Its batches take callers for as long as they queue, so that the tests
// decide which callers share one.
func openBatchTest(t *testing.T) (*testDB, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	db := openTest(t, testPath(t), "FULL")
	if err := db.exec(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	db.w.maxAge = time.Hour
	return db, ctx
}

func put(ctx context.Context, tx *Tx, k string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, 1)`, k)
	return err
}

// keys returns the keys committed, as the reader pool sees them.
func keys(t *testing.T, db *testDB) map[string]bool {
	t.Helper()
	rows, err := db.reader.Query(`SELECT k FROM kv`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := make(map[string]bool)
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		m[k] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitQueued waits until n callers wait for the writer.
func waitQueued(t *testing.T, db *testDB, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		db.w.mu.Lock()
		got := len(db.w.queue)
		db.w.mu.Unlock()
		if got >= n {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%d callers wait for the writer, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// async runs f in a goroutine and returns its error on a channel.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func recv(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("caller did not return")
		return nil
	}
}

func TestGroupCommit_Concurrent(t *testing.T) {
	const writers, perWriter = 32, 200
	db, ctx := openBatchTest(t)
	db.w.maxAge = maxBatchAge
	before := db.w.commits.Load()

	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				errs <- db.write(ctx, func(tx *Tx) error { return put(ctx, tx, fmt.Sprintf("%d/%d", g, i)) })
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, want := len(keys(t, db)), writers*perWriter; got != want {
		t.Fatalf("%d rows committed, want %d", got, want)
	}
	commits := db.w.commits.Load() - before
	t.Logf("%d writes in %d commits", writers*perWriter, commits)
	if commits >= writers*perWriter {
		t.Fatalf("%d commits for %d concurrent writes: no batching", commits, writers*perWriter)
	}
}

func TestGroupCommit_LoneWriteCommitsAtOnce(t *testing.T) {
	db, ctx := openBatchTest(t)
	for i := range 3 {
		before := db.w.commits.Load()
		if err := db.write(ctx, func(tx *Tx) error { return put(ctx, tx, fmt.Sprint(i)) }); err != nil {
			t.Fatal(err)
		}
		if got, want := db.w.commits.Load()-before, int64(1); got != want {
			t.Fatalf("%d commits, want %d", got, want)
		}
		if !keys(t, db)[fmt.Sprint(i)] {
			t.Fatalf("write %d not visible after Commit returned", i)
		}
		if db.w.batch != nil {
			t.Fatal("a batch is still open")
		}
	}
}

// TestGroupCommit_RollbackKeepsOthers has three callers share one batch: the
// middle one writes, fails and rolls back; the others' writes are committed.
func TestGroupCommit_RollbackKeepsOthers(t *testing.T) {
	db, ctx := openBatchTest(t)
	before := db.w.commits.Load()

	a, err := db.w.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, a, "a"); err != nil {
		t.Fatal(err)
	}
	errB := async(func() error {
		return db.write(ctx, func(tx *Tx) error {
			for _, k := range []string{"b1", "b2", "b3"} {
				if err := put(ctx, tx, k); err != nil {
					return err
				}
			}
			return put(ctx, tx, "a") // a UNIQUE violation
		})
	})
	waitQueued(t, db, 1)
	errC := async(func() error {
		return db.write(ctx, func(tx *Tx) error { return put(ctx, tx, "c") })
	})
	waitQueued(t, db, 2)
	errA := async(a.Commit)

	if err := recv(t, errB); !isUniqueViolation(err) {
		t.Fatalf("b: %v, want a UNIQUE violation", err)
	}
	if err := recv(t, errA); err != nil {
		t.Fatalf("a: %v", err)
	}
	if err := recv(t, errC); err != nil {
		t.Fatalf("c: %v", err)
	}
	got := keys(t, db)
	for k, want := range map[string]bool{"a": true, "b1": false, "b2": false, "b3": false, "c": true} {
		if got[k] != want {
			t.Errorf("%s committed: %v, want %v", k, got[k], want)
		}
	}
	if got, want := db.w.commits.Load()-before, int64(1); got != want {
		t.Fatalf("%d commits, want %d", got, want)
	}
}

func TestGroupCommit_Cancel(t *testing.T) {
	db, ctx := openBatchTest(t)

	t.Run("between statements", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		tx, err := db.w.Begin(cctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := put(cctx, tx, "x1"); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := put(cctx, tx, "x2"); !errors.Is(err, context.Canceled) {
			t.Fatalf("after cancel: %v, want context.Canceled", err)
		}
		var n int
		if err := tx.QueryRowContext(cctx, `SELECT count(*) FROM kv`).Scan(&n); !errors.Is(err, context.Canceled) {
			t.Fatalf("query after cancel: %v, want context.Canceled", err)
		}
		if err := tx.Commit(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Commit after cancel: %v, want context.Canceled", err)
		}
		if keys(t, db)["x1"] {
			t.Fatal("a cancelled transaction's write was committed")
		}
	})

	t.Run("waiting for the writer", func(t *testing.T) {
		a, err := db.w.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := put(ctx, a, "y1"); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		errB := async(func() error {
			_, err := db.w.Begin(cctx)
			return err
		})
		waitQueued(t, db, 1)
		cancel()
		if err := recv(t, errB); !errors.Is(err, context.Canceled) {
			t.Fatalf("b: %v, want context.Canceled", err)
		}
		if err := a.Commit(); err != nil {
			t.Fatal(err)
		}
		if !keys(t, db)["y1"] {
			t.Fatal("y1 not committed")
		}
	})

	t.Run("a cancelled caller in a batch", func(t *testing.T) {
		a, err := db.w.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := put(ctx, a, "z1"); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		started := make(chan struct{})
		errB := async(func() error {
			tx, err := db.w.Begin(cctx)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if err := put(cctx, tx, "z2"); err != nil {
				return err
			}
			close(started)
			<-cctx.Done()
			if err := put(cctx, tx, "z3"); err != nil {
				return err
			}
			return tx.Commit()
		})
		waitQueued(t, db, 1)
		errA := async(a.Commit)
		<-started
		cancel()
		if err := recv(t, errB); !errors.Is(err, context.Canceled) {
			t.Fatalf("b: %v, want context.Canceled", err)
		}
		if err := recv(t, errA); err != nil {
			t.Fatalf("a: %v", err)
		}
		got := keys(t, db)
		if !got["z1"] || got["z2"] || got["z3"] {
			t.Fatalf("committed z1 %v z2 %v z3 %v, want only z1", got["z1"], got["z2"], got["z3"])
		}
	})
}

// TestGroupCommit_Lost ends the batch's transaction under the callers, as
// SQLite does after an I/O error: every caller of the batch fails, and the
// next write starts a new batch.
func TestGroupCommit_Lost(t *testing.T) {
	db, ctx := openBatchTest(t)
	a, err := db.w.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, a, "a"); err != nil {
		t.Fatal(err)
	}
	errB := async(func() error {
		return db.write(ctx, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, `ROLLBACK`)
			return err
		})
	})
	waitQueued(t, db, 1)
	errA := async(a.Commit)
	if err := recv(t, errB); !errors.Is(err, errBatchLost) {
		t.Fatalf("b: %v, want errBatchLost", err)
	}
	if err := recv(t, errA); !errors.Is(err, errBatchLost) {
		t.Fatalf("a: %v, want errBatchLost", err)
	}
	if err := db.write(ctx, func(tx *Tx) error { return put(ctx, tx, "c") }); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, db); got["a"] || !got["c"] {
		t.Fatalf("committed a %v c %v, want only c", got["a"], got["c"])
	}
}

func TestGroupCommit_PanicAndOpenRows(t *testing.T) {
	db, ctx := openBatchTest(t)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		db.write(ctx, func(tx *Tx) error {
			if err := put(ctx, tx, "p"); err != nil {
				return err
			}
			panic("caller bug")
		})
	}()
	// Rows left open do not keep the savepoint from being released.
	if err := db.write(ctx, func(tx *Tx) error {
		if _, err := tx.QueryContext(ctx, `SELECT k FROM kv`); err != nil {
			return err
		}
		return put(ctx, tx, "q")
	}); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, db); got["p"] || !got["q"] {
		t.Fatalf("committed p %v q %v, want only q", got["p"], got["q"])
	}
}

// TestGroupCommit_Close commits the batch a caller is waiting for, waits for
// the caller holding the writer, and refuses later writes.
func TestGroupCommit_Close(t *testing.T) {
	db, ctx := openBatchTest(t)
	a, err := db.w.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, a, "a"); err != nil {
		t.Fatal(err)
	}
	b := make(chan *Tx, 1)
	errB := async(func() error {
		tx, err := db.w.Begin(ctx)
		if err != nil {
			return err
		}
		b <- tx
		return nil
	})
	waitQueued(t, db, 1)
	errA := async(a.Commit)
	if err := recv(t, errB); err != nil {
		t.Fatal(err)
	}
	txB := <-b
	if err := put(ctx, txB, "b"); err != nil {
		t.Fatal(err)
	}
	closed := async(db.close)
	waitQueued(t, db, 1) // Close waits for b
	errB = async(txB.Commit)
	if err := recv(t, errA); err != nil {
		t.Fatalf("a: %v", err)
	}
	if err := recv(t, errB); err != nil {
		t.Fatalf("b: %v", err)
	}
	if err := recv(t, closed); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := db.w.Begin(ctx); !errors.Is(err, errClosed) {
		t.Fatalf("Begin after Close: %v, want errClosed", err)
	}

	db2 := openTest(t, db.path, "FULL")
	if got := keys(t, db2); !got["a"] || !got["b"] {
		t.Fatalf("after Close: a %v b %v committed, want both", got["a"], got["b"])
	}
}
