package store_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
)

// MustOpenDB opens a new database in a temporary directory and closes it when
// the test ends.
func MustOpenDB(tb testing.TB) *store.DB {
	tb.Helper()
	return MustOpenDBAt(tb, filepath.Join(tb.TempDir(), "simgate.db"), store.Options{})
}

// MustOpenDBAt opens the database at path with opts and closes it when the
// test ends.
func MustOpenDBAt(tb testing.TB, path string, opts store.Options) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// testContext returns a context that ends before the test's deadline, so that
// a stuck test fails instead of hanging.
func testContext(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// rawOpen opens path with database/sql directly, bypassing the store, to
// inspect or tamper with a closed database.
func rawOpen(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestOpen_Migrations(t *testing.T) {
	ctx := testContext(t, time.Minute)
	path := filepath.Join(t.TempDir(), "simgate.db")

	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	applied := db.Applied()
	if got, want := len(applied), store.LatestSchemaVersion(); got != want || got == 0 {
		t.Fatalf("applied %d migrations, want %d", got, want)
	}
	if got, want := applied[0].String(), "0001_init"; got != want {
		t.Fatalf("first migration = %q, want %q", got, want)
	}
	ms, err := db.Migrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if got, want := m.Version, i+1; got != want {
			t.Fatalf("migration %d has version %d", i, got)
		}
		if m.AppliedAt.IsZero() {
			t.Fatalf("migration %s has no time", m)
		}
	}
	if got, want := len(ms), store.LatestSchemaVersion(); got != want {
		t.Fatalf("recorded %d migrations, want %d", got, want)
	}
	if v, err := db.SchemaVersion(ctx); err != nil {
		t.Fatal(err)
	} else if got, want := v, store.LatestSchemaVersion(); got != want {
		t.Fatalf("schema version %d, want %d", got, want)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	raw := rawOpen(t, path)
	for _, table := range []string{
		"schema_migrations", "messages", "message_parts", "message_events", "status_reports",
		"verifications", "verification_sends", "check_failures", "inbound_messages", "modems",
		"modem_daily_usage", "api_keys", "idempotency_keys", "opt_outs", "alerts",
		"webhook_events", "webhook_deliveries", "webhook_subscriptions", "heartbeat", "budget_counts",
	} {
		var strict bool
		err := raw.QueryRow(`SELECT strict FROM pragma_table_list WHERE name = ?`, table).Scan(&strict)
		if err != nil {
			t.Fatalf("table %s: %v", table, err)
		} else if !strict {
			t.Errorf("table %s is not STRICT", table)
		}
	}
	var userVersion int
	if err := raw.QueryRow(`PRAGMA user_version`).Scan(&userVersion); err != nil {
		t.Fatal(err)
	} else if got, want := userVersion, store.LatestSchemaVersion(); got != want {
		t.Fatalf("user_version = %d, want %d", got, want)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	// A second Open finds nothing to do and changes nothing.
	db2 := MustOpenDBAt(t, path, store.Options{})
	if got := db2.Applied(); len(got) != 0 {
		t.Fatalf("second open applied %v", got)
	}
	ms2, err := db2.Migrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(ms2), len(ms); got != want {
		t.Fatalf("second open: %d migrations recorded, want %d", got, want)
	}
	for i := range ms {
		if ms2[i] != ms[i] {
			t.Fatalf("second open: migration %d is %+v, was %+v", i, ms2[i], ms[i])
		}
	}
	if v, err := db2.SchemaVersion(ctx); err != nil {
		t.Fatal(err)
	} else if got, want := v, userVersion; got != want {
		t.Fatalf("second open: schema version %d, want %d", got, want)
	}
}

func TestOpen_SchemaTooNew(t *testing.T) {
	ctx := testContext(t, time.Minute)
	path := filepath.Join(t.TempDir(), "simgate.db")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Stamp the file as a future simgate would.
	raw := rawOpen(t, path)
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', '2099-01-01T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`PRAGMA user_version = 999`); err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	_, err = store.Open(ctx, path, store.Options{})
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
	var tooNew *store.SchemaTooNewError
	if !errors.As(err, &tooNew) {
		t.Fatalf("Open = %T, want *SchemaTooNewError", err)
	}
	if got, want := tooNew.Version, 999; got != want {
		t.Fatalf("Version = %d, want %d", got, want)
	} else if got, want := tooNew.Known, store.LatestSchemaVersion(); got != want {
		t.Fatalf("Known = %d, want %d", got, want)
	}
	for _, want := range []string{path, "schema version 999", "newer than this simgate knows", "upgrade simgate or restore a backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// The refused file is left as it was.
	raw = rawOpen(t, path)
	var userVersion int
	if err := raw.QueryRow(`PRAGMA user_version`).Scan(&userVersion); err != nil {
		t.Fatal(err)
	} else if got, want := userVersion, 999; got != want {
		t.Fatalf("user_version = %d after refusal, want %d", got, want)
	}
}

func TestOpen_UserVersionTooNew(t *testing.T) {
	// A file with only user_version set (say, restored from elsewhere) is
	// refused too.
	path := filepath.Join(t.TempDir(), "simgate.db")
	raw := rawOpen(t, path)
	if _, err := raw.Exec(`PRAGMA user_version = 42`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	if _, err := store.Open(testContext(t, time.Minute), path, store.Options{}); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
}

func TestOpen_BadSynchronous(t *testing.T) {
	for _, s := range []string{"FAST", "OFF", "EXTRA", "2"} {
		t.Run(s, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "simgate.db")
			_, err := store.Open(testContext(t, time.Minute), path, store.Options{Synchronous: s})
			if err == nil || !strings.Contains(err.Error(), "synchronous") {
				t.Fatalf("Open = %v, want an error about synchronous", err)
			}
		})
	}
}

func TestDB_Ping(t *testing.T) {
	db := MustOpenDB(t)
	if err := db.Ping(testContext(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(testContext(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
}

// TestDB_Close checks that Close keeps what was committed and refuses writes
// from then on. How the writer finishes the writes under way when Close
// starts is TestGroupCommit_Close in store/internal/txn.
func TestDB_Close(t *testing.T) {
	ctx := testContext(t, time.Minute)
	path := filepath.Join(t.TempDir(), "simgate.db")
	db := MustOpenDBAt(t, path, store.Options{})
	m := newMessage("+15550000001", "before Close", 1)
	if err := createMessage(ctx, db, m); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := createMessage(ctx, db, newMessage("+15550000001", "after Close", 1)); err == nil || !strings.Contains(err.Error(), "database is closed") {
		t.Fatalf("write after Close: %v, want database is closed", err)
	}
	db = MustOpenDBAt(t, path, store.Options{})
	if _, err := db.FindMessage(ctx, m.ID); err != nil {
		t.Fatalf("message committed before Close: %v", err)
	}
}

// TestDB_ConcurrentWrites writes from 8 goroutines while others read: with a
// single writer connection no write may fail with SQLITE_BUSY.
func TestDB_ConcurrentWrites(t *testing.T) {
	const writers, perWriter, readers = 8, 500, 4
	ctx := testContext(t, 5*time.Minute)
	db := MustOpenDB(t)

	var readErr error
	var readMu sync.Mutex
	done := make(chan struct{})
	var rwg sync.WaitGroup
	for range readers {
		rwg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := db.ListInboundMessages(ctx, 0, 50); err != nil {
					readMu.Lock()
					readErr = errors.Join(readErr, err)
					readMu.Unlock()
					return
				}
				if _, err := db.SchemaVersion(ctx); err != nil {
					readMu.Lock()
					readErr = errors.Join(readErr, err)
					readMu.Unlock()
					return
				}
			}
		})
	}

	errs := make(chan error, writers*perWriter)
	var wwg sync.WaitGroup
	for w := range writers {
		wwg.Go(func() {
			for i := range perWriter {
				m := &simgate.InboundMessage{ModemID: "modem0", From: "+15550001", Text: strings.Repeat("x", w+i%7)}
				if err := db.CreateInboundMessage(ctx, m); err != nil {
					errs <- err
				}
			}
		})
	}
	wwg.Wait()
	close(done)
	rwg.Wait()
	close(errs)

	for err := range errs {
		t.Errorf("write: %v", err)
	}
	if readErr != nil {
		t.Errorf("read: %v", readErr)
	}

	var n int
	var after int64
	for {
		ms, err := db.ListInboundMessages(ctx, after, store.MaxInboundLimit)
		if err != nil {
			t.Fatal(err)
		} else if len(ms) == 0 {
			break
		}
		n += len(ms)
		after = ms[len(ms)-1].ID
	}
	if got, want := n, writers*perWriter; got != want {
		t.Fatalf("%d rows, want %d", got, want)
	}
}
