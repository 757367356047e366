package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
)

// Backup writes a consistent copy that opens as a database with what was
// committed, refuses to overwrite a file, and leaves no -shm file beside the
// database: the WAL index lives in the process's memory (see "One process"
// in docs/STORAGE.md), so SQLite maps no file that could fault.
func TestBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "simgate.db")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := &simgate.Message{To: "+4915123456789", Text: "kept in the copy", Parts: make([]simgate.Part, 1)}
	if err := createMessage(ctx, db, m); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-shm"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a -shm file beside the open database: %v", err)
	}

	dest := filepath.Join(dir, "copy.db")
	if err := db.Backup(ctx, dest); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the copy: %v, %v; want mode 0600", fi, err)
	}
	if err := db.Backup(ctx, dest); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a backup over the copy: %v, want refused", err)
	}
	if err := db.Backup(ctx, filepath.Join(dir, "no", "such", "dir.db")); err == nil {
		t.Fatal("a backup into a missing directory succeeded")
	}

	cp, err := store.Open(ctx, dest, store.Options{})
	if err != nil {
		t.Fatalf("open the copy: %v", err)
	}
	defer cp.Close()
	got, err := cp.FindMessage(ctx, m.ID)
	if err != nil || got.Text != m.Text {
		t.Fatalf("the message in the copy: %+v, %v", got, err)
	}
}
