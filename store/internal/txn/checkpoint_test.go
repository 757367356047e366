package txn

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// openCheckpointTest opens a database with a table blobs for the checkpoint
// tests.
func openCheckpointTest(t *testing.T, synchronous string) *testDB {
	t.Helper()
	db := openTest(t, testPath(t), synchronous)
	if err := db.exec(context.Background(), `CREATE TABLE blobs (id INTEGER PRIMARY KEY, data TEXT NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	return db
}

// writeBlob commits one transaction that writes a row of n bytes.
func writeBlob(ctx context.Context, db *testDB, n int) error {
	return db.exec(ctx, `INSERT INTO blobs (data) VALUES (?)`, strings.Repeat("x", n))
}

// ping proves that the database takes writes and that the reader pool reads
// them, as the store's Ping (readiness) does.
func ping(ctx context.Context, db *testDB) error {
	if err := writeBlob(ctx, db, 1); err != nil {
		return err
	}
	var n int
	return db.reader.QueryRowContext(ctx, `SELECT count(*) FROM blobs`).Scan(&n)
}

// Writes that never pause leave no moment when the WAL is wholly copied, so
// passive checkpoints alone would let it grow without end (to 57 000 frames
// here, 14 times walLimitFrames, when the hold is taken out); past
// walLimitFrames the checkpointer holds the writer to finish one, which kept
// the WAL at 6 000 to 9 500 frames here.
func TestCheckpointer_BoundsWALUnderConstantWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// FULL, as in production: with NORMAL the writes here outrun the disk
	// (nothing waits for an fsync but the checkpoints), an overload no
	// checkpoint schedule keeps up with.
	db := openCheckpointTest(t, "FULL")
	const blobKiB = 64
	var written atomic.Int64 // KiB
	var maxWAL atomic.Int64
	total := int64(6 * walLimitFrames * 4) // KiB: six limits' worth of pages
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for written.Add(blobKiB) < total {
				if err := writeBlob(ctx, db, blobKiB<<10); err != nil {
					errs <- err
					return
				}
				if fi, err := os.Stat(db.path + "-wal"); err == nil && fi.Size() > maxWAL.Load() {
					maxWAL.Store(fi.Size())
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A frame is a 4 KiB page and a 24-byte header.
	limit := int64(4 * walLimitFrames * (4096 + 24))
	if got := maxWAL.Load(); got > limit {
		t.Fatalf("WAL grew to %d bytes (%d frames) while %d KiB were written; want at most %d bytes",
			got, got/(4096+24), total, limit)
	}
	t.Logf("WAL at most %d bytes while %d KiB were written", maxWAL.Load(), total)
}

// A WAL that cannot be checkpointed (here: the checkpointer's connection is
// gone; in the field: a read-only or immutable database file) past walBound
// stops writes with a 503 (CodeUnavailable from Begin) and fails Ping
// (readiness), instead of growing without bound while /readyz says ready.
func TestWALStuck(t *testing.T) {
	old := walBound
	walBound = 32 << 10
	t.Cleanup(func() { walBound = old })
	db := openCheckpointTest(t, "FULL")
	ctx := context.Background()
	db.ckpt.db.Close() // every checkpoint fails from now on
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := writeBlob(ctx, db, 1000); err != nil {
			if simgate.ErrorCode(err) != simgate.CodeUnavailable || !strings.Contains(simgate.ErrorMessage(err), "cannot be copied into the database file") {
				t.Fatalf("write refused with %v, want unavailable: WAL stuck", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes still accepted into a WAL that cannot be checkpointed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := ping(ctx, db); simgate.ErrorCode(err) != simgate.CodeUnavailable {
		t.Fatalf("Ping with the WAL stuck: %v, want unavailable", err)
	}
}

// A busy but healthy database is not stuck: its passive checkpoints copy
// less than the WAL holds while writes and reads go on, and the WAL file
// keeps the size of its largest burst, but the checkpoint that holds the
// writer copies everything. (Writes were refused here on the old code, which
// judged by the passive run and the file's size.)
func TestWALBusyIsNotStuck(t *testing.T) {
	oldBound, oldLimit := walBound, walLimitFrames
	walBound, walLimitFrames = 1<<20, 64 // 64 pages, well below the bound
	t.Cleanup(func() { walBound, walLimitFrames = oldBound, oldLimit })
	db := openCheckpointTest(t, "NORMAL")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 2 { // readers holding snapshots, as the API's do
		wg.Go(func() {
			for ctx.Err() == nil {
				tx, err := db.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
				if err != nil {
					return
				}
				var n int
				tx.QueryRowContext(ctx, `SELECT count(*) FROM blobs`).Scan(&n)
				time.Sleep(time.Millisecond)
				tx.Rollback()
			}
		})
	}
	defer wg.Wait()
	defer cancel()
	grown := false
	for start := time.Now(); time.Since(start) < 3*time.Second || !grown; {
		if err := writeBlob(ctx, db, 500); err != nil {
			t.Fatalf("a healthy database refused a write: %v", err)
		}
		if fi, err := os.Stat(db.path + "-wal"); err == nil && fi.Size() > walBound {
			grown = true
		}
		if time.Since(start) > 60*time.Second {
			t.Fatal("the WAL never grew past walBound: the test does not test anything")
		}
	}
}

// A stuck WAL recovers without a restart once the database file can be
// written again: no write commits while it is stuck, so the checkpointer
// retries by itself.
func TestWALStuckRecovers(t *testing.T) {
	old := walBound
	walBound = 32 << 10
	t.Cleanup(func() { walBound = old })
	db := openCheckpointTest(t, "FULL")
	ctx := context.Background()
	if out, err := exec.Command("chattr", "+i", db.path).CombinedOutput(); err != nil {
		t.Skipf("cannot make the database file immutable here (chattr +i needs root and a file system with the flag): %v %s", err, out)
	}
	immutable := true
	defer func() {
		if immutable {
			exec.Command("chattr", "-i", db.path).Run()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := writeBlob(ctx, db, 1000); err != nil {
			if !strings.Contains(simgate.ErrorMessage(err), "cannot be copied into the database file") {
				t.Fatalf("write refused with %v, want unavailable: WAL stuck", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes still accepted into a WAL that cannot be checkpointed into an immutable file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if out, err := exec.Command("chattr", "-i", db.path).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %v %s", err, out)
	}
	immutable = false
	deadline = time.Now().Add(10 * time.Second)
	for ping(ctx, db) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("still refusing writes 10 s after the file became writable: %v", ping(ctx, db))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
