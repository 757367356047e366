package store

import (
	"context"
	"os"
	"strings"
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
