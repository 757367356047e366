package txn

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
)

// testDriver is go-sqlite3 with the settings of the store's driver that
// matter here (see "PRAGMAs" in docs/STORAGE.md): sub-journals in memory and
// no automatic checkpoint, which the Checkpointer replaces.
const testDriver = "sqlite3_txn_test"

func init() {
	sql.Register(testDriver, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec("PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0", nil)
		return err
	}})
}

// testDB is a database file opened as the store opens it (Open in
// store/store.go): a writer pool of one connection with its Writer, a
// Checkpointer on a connection of its own, and a query_only reader pool.
type testDB struct {
	path   string
	pool   *sql.DB // the writer pool
	w      *Writer
	ckpt   *Checkpointer
	reader *sql.DB

	once     sync.Once
	closeErr error
}

// openTest opens the database at path with PRAGMA synchronous set to
// synchronous, and closes it when the test ends.
func openTest(tb testing.TB, path, synchronous string) *testDB {
	tb.Helper()
	// The store's settings (dsn in store/store.go), but for the file's
	// creation and foreign keys.
	dsn := "file:" + path + "?vfs=unix-excl&_busy_timeout=5000&_synchronous=" + synchronous
	open := func(writer bool) *sql.DB {
		mode := "&_query_only=on"
		if writer {
			mode = "&_journal_mode=WAL&_txlock=immediate"
		}
		pool, err := sql.Open(testDriver, dsn+mode)
		if err != nil {
			tb.Fatal(err)
		}
		return pool
	}
	db := &testDB{path: path, pool: open(true)}
	tb.Cleanup(func() { db.close() })
	db.pool.SetMaxOpenConns(1)
	db.pool.SetMaxIdleConns(1)
	if err := db.pool.Ping(); err != nil {
		tb.Fatal(err)
	}
	db.w = NewWriter(db.pool)
	ckpt := open(true)
	ckpt.SetMaxOpenConns(1)
	logf := func(msg string, args ...any) { tb.Log(append([]any{msg}, args...)...) }
	db.ckpt = NewCheckpointer(ckpt, db.w, path+"-wal", logf)
	db.reader = open(false)
	return db
}

// close closes the database as DB.Close in store/store.go does. It may be
// called more than once.
func (db *testDB) close() error {
	db.once.Do(func() {
		var errs []error
		errs = append(errs, db.ckpt.Close())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, db.w.Close(ctx))
		cancel()
		errs = append(errs, db.reader.Close(), db.pool.Close())
		db.closeErr = errors.Join(errs...)
	})
	return db.closeErr
}

// write runs f in a write transaction, as the store's methods do.
func (db *testDB) write(ctx context.Context, f func(tx *Tx) error) error {
	tx, err := db.w.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// exec runs one statement in a write transaction of its own.
func (db *testDB) exec(ctx context.Context, query string, args ...any) error {
	return db.write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	})
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// violation.
func isUniqueViolation(err error) bool {
	var e sqlite3.Error
	return errors.As(err, &e) &&
		(e.ExtendedCode == sqlite3.ErrConstraintUnique || e.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

// testPath returns the path of a new database file in the test's directory.
func testPath(tb testing.TB) string {
	return filepath.Join(tb.TempDir(), "txn.db")
}
