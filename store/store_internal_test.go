package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/simgate/simgate"
)

func openTest(tb testing.TB, opts Options) *DB {
	tb.Helper()
	db, err := Open(context.Background(), filepath.Join(tb.TempDir(), "simgate.db"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// TestPragmas checks every PRAGMA on the writer and on several reader
// connections at once, since each pooled connection must have them.
func TestPragmas(t *testing.T) {
	for _, tt := range []struct {
		name        string
		synchronous string
		want        int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{
		{"default", "", 2},
		{"FULL", "FULL", 2},
		{"NORMAL", "NORMAL", 1},
		{"normal", "normal", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			db := openTest(t, Options{Synchronous: tt.synchronous})

			check := func(t *testing.T, conn *sql.Conn) {
				t.Helper()
				var journal string
				var sync, fk, busy, temp, autockpt int
				if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&journal); err != nil {
					t.Fatal(err)
				}
				if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
					t.Fatal(err)
				}
				if err := conn.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
					t.Fatal(err)
				}
				if err := conn.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil {
					t.Fatal(err)
				}
				if err := conn.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&temp); err != nil {
					t.Fatal(err)
				}
				if err := conn.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&autockpt); err != nil {
					t.Fatal(err)
				}
				if got, want := journal, "wal"; got != want {
					t.Errorf("journal_mode = %q, want %q", got, want)
				}
				if got, want := sync, tt.want; got != want {
					t.Errorf("synchronous = %d, want %d", got, want)
				}
				if got, want := fk, 1; got != want {
					t.Errorf("foreign_keys = %d, want %d", got, want)
				}
				if busy < 5000 {
					t.Errorf("busy_timeout = %d, want >= 5000", busy)
				}
				if got, want := temp, 2; got != want {
					t.Errorf("temp_store = %d, want %d (MEMORY)", got, want)
				}
				if got, want := autockpt, 0; got != want {
					t.Errorf("wal_autocheckpoint = %d, want %d (the checkpointer's job)", got, want)
				}
			}

			t.Run("writer", func(t *testing.T) {
				conn, err := db.writer.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				check(t, conn)
			})
			t.Run("readers", func(t *testing.T) {
				// Hold three at once so that they are three connections.
				for range 3 {
					conn, err := db.reader.Conn(ctx)
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close()
					check(t, conn)
					var queryOnly int
					if err := conn.QueryRowContext(ctx, `PRAGMA query_only`).Scan(&queryOnly); err != nil {
						t.Fatal(err)
					} else if got, want := queryOnly, 1; got != want {
						t.Errorf("query_only = %d, want %d", got, want)
					}
				}
			})
		})
	}
}

func TestReaderRefusesWrites(t *testing.T) {
	db := openTest(t, Options{})
	if _, err := db.reader.Exec(`INSERT INTO heartbeat (id, at) VALUES (1, 0)`); err == nil {
		t.Fatal("a reader connection wrote")
	}
}

func TestMigrate_FailureRollsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "simgate.db")
	fsys := fstest.MapFS{
		"migrations/0001_one.sql": {Data: []byte(`CREATE TABLE one (id INTEGER PRIMARY KEY) STRICT;`)},
		"migrations/0002_two.sql": {Data: []byte(`CREATE TABLE two (id INTEGER PRIMARY KEY) STRICT; SELECT nonsense FROM nowhere;`)},
	}
	if _, err := open(ctx, path, Options{}, fsys); err == nil || !strings.Contains(err.Error(), "0002_two") {
		t.Fatalf("open = %v, want an error naming 0002_two", err)
	}

	fsys["migrations/0002_two.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE two (id INTEGER PRIMARY KEY) STRICT;`)}
	db, err := open(ctx, path, Options{}, fsys)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// 0001 stayed applied; 0002 left nothing behind (its table would make
	// the second attempt fail) and is applied now.
	if got := db.Applied(); len(got) != 1 || got[0].String() != "0002_two" {
		t.Fatalf("applied %v, want [0002_two]", got)
	}
	if v, err := db.SchemaVersion(ctx); err != nil {
		t.Fatal(err)
	} else if got, want := v, 2; got != want {
		t.Fatalf("schema version %d, want %d", got, want)
	}
}

func TestLoadMigrations(t *testing.T) {
	ms, err := loadMigrations(migrationsFS)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Name != "init" {
		t.Fatalf("embedded migrations = %v", ms)
	}

	for name, fsys := range map[string]fstest.MapFS{
		"gap":      {"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}},
		"zero":     {"migrations/0000_a.sql": {}},
		"bad name": {"migrations/1_a.sql": {}},
		"dup":      {"migrations/0001_a.sql": {}, "migrations/0001_b.sql": {}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := loadMigrations(fsys); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// TestOpen_OddPath checks that a path with URI metacharacters reaches SQLite
// intact.
func TestOpen_OddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?x=1#frag%20")
	path := filepath.Join(dir, "simgate.db")
	db, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var file string
	if err := db.writer.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		t.Fatal(err)
	} else if got, want := file, path; got != want {
		t.Fatalf("database file = %q, want %q", got, want)
	}
}

func TestWriterIsSingleConnection(t *testing.T) {
	db := openTest(t, Options{})
	if got, want := db.writer.Stats().MaxOpenConnections, 1; got != want {
		t.Fatalf("writer allows %d connections, want %d", got, want)
	}
}

// TestOpen_FileMode checks that the database, which holds key and code
// hashes, is readable by its owner only.
func TestOpen_FileMode(t *testing.T) {
	db := openTest(t, Options{})
	if err := db.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{db.path, db.path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
			t.Errorf("%s has mode %v, want %v", filepath.Base(p), got, want)
		}
	}
}

// A full disk answers the writes it refuses with a CodeUnavailable error that
// says so and when to retry (503 with Retry-After at the API), not an
// internal error. The database's page limit stands in for the disk.
func TestDiskFull(t *testing.T) {
	db := openTest(t, Options{})
	ctx := context.Background()
	var pages int
	if err := db.writer.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := db.writer.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+2)); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		m := &simgate.Message{To: "+4915123456789", Text: strings.Repeat("x", 1500), Status: simgate.StatusQueued,
			Parts: make([]simgate.Part, 10)}
		for i := range m.Parts {
			m.Parts[i].Status = simgate.StatusQueued
		}
		err = db.UpdateMessages(ctx, func(tx simgate.MessageTx) error { return tx.InsertMessage(ctx, m, nil) })
	}
	if !errors.Is(err, ErrDiskFull) || simgate.ErrorCode(err) != simgate.CodeUnavailable || !strings.Contains(simgate.ErrorMessage(err), "disk is full") {
		t.Fatalf("write on a full disk: %v (code %s), want ErrDiskFull, unavailable", err, simgate.ErrorCode(err))
	}
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfter() <= 0 {
		t.Fatal("no Retry-After")
	}
}
