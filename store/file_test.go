package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
)

// A database file deleted under the running process stops every write with
// a 503 and a clear error, and Ping (readiness) fails; before, requests kept
// returning 201 into the deleted file and nothing was logged.
func TestDatabaseDeletedWhileOpen(t *testing.T) {
	for _, what := range []string{"deleted", "replaced"} {
		t.Run(what, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "simgate.db")
			db, err := store.Open(ctx, path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(path + suffix)
			}
			if what == "replaced" {
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err = db.Ping(ctx)
			if !errors.Is(err, store.ErrDatabaseReplaced) || simgate.ErrorCode(err) != simgate.CodeUnavailable {
				t.Fatalf("Ping after the file was %s: %v, want ErrDatabaseReplaced, unavailable", what, err)
			}
			m := &simgate.Message{To: "+4915123456789", Text: "into a deleted file", Parts: make([]simgate.Part, 1)}
			if err := createMessage(ctx, db, m); !errors.Is(err, store.ErrDatabaseReplaced) {
				t.Fatalf("a write after the file was %s: %v, want refused", what, err)
			}
		})
	}
}

// The guard's own loop notices without a Ping.
func TestDatabaseGuardLoop(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "simgate.db")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	os.Remove(path)
	deadline := time.Now().Add(3 * store.FileCheckInterval)
	for {
		m := &simgate.Message{To: "+4915123456789", Text: "x", Parts: make([]simgate.Part, 1)}
		if err := createMessage(ctx, db, m); errors.Is(err, store.ErrDatabaseReplaced) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("writes still accepted into the deleted file")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A missing database whose marker says simgate created it is an error (a
// wiped volume), not a first start; Create (simgate migrate) makes a new
// one; "rm simgate.db*" leaves the marker.
func TestMissingDatabaseRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "simgate.db")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	matches, _ := filepath.Glob(path + "*")
	for _, m := range matches {
		os.Remove(m)
	}
	if _, err := store.Open(ctx, path, store.Options{}); !errors.Is(err, store.ErrDatabaseMissing) {
		t.Fatalf("Open of a missing database that existed: %v, want ErrDatabaseMissing", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the refused Open created the file")
	}
	db, err = store.Open(ctx, path, store.Options{Create: true})
	if err != nil {
		t.Fatalf("Open with Create: %v", err)
	}
	db.Close()
}
