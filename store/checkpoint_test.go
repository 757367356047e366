package store

import (
	"context"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeBlob commits one transaction that writes about n KiB.
func writeBlob(ctx context.Context, db *DB, n int) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO alerts (kind, subject, detail, at) VALUES ('test', 'test', ?, 0)`,
		strings.Repeat("x", n<<10)); err != nil {
		return err
	}
	return tx.Commit()
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// The writer never checkpoints (wal_autocheckpoint=0, see TestPragmas); the
// checkpointer copies what was committed into the database file soon after.
func TestCheckpointer_CopiesCommits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := openTest(t, Options{Synchronous: "NORMAL"})
	before := fileSize(t, db.path)
	for range 20 {
		if err := writeBlob(ctx, db, 16); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for fileSize(t, db.path) < before+20*16<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes 10 s after 320 KiB were committed (%d before): no checkpoint",
				fileSize(t, db.path), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	db := openTest(t, Options{})
	const blobKiB = 64
	var written atomic.Int64 // KiB
	var maxWAL atomic.Int64
	total := int64(6 * walLimitFrames * 4) // KiB: six limits' worth of pages
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for written.Add(blobKiB) < total {
				if err := writeBlob(ctx, db, blobKiB); err != nil {
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
