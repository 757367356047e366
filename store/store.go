// Package store keeps simgate's state in a single SQLite file through
// github.com/mattn/go-sqlite3: SQL and migrations only; the rules that
// decide what to write are the services' (verify, queue; see
// docs/ARCHITECTURE.md).
//
// Where to look:
//
//   - store.go: Open, the connections (a writer of one connection, the
//     checkpointer's, a query_only reader pool) and their settings, and tx,
//     the transaction every query runs in;
//   - internal/txn: the group-commit writer and the WAL checkpointer;
//   - one file per kind of record (message.go, report.go, verification.go,
//     apikey.go, service.go, webhook.go, ...), each with its exported
//     methods first;
//   - migrate.go and migrations/: the schema, applied at Open;
//   - file.go, full.go, backup.go: a database file that disappears or is
//     replaced, a full disk, consistent copies.
//
// Why the connections and PRAGMAs are what they are (one writer connection
// with BEGIN IMMEDIATE, query_only readers, the unix-excl VFS that keeps the
// WAL index out of a mapped file and the file to this process,
// synchronous=FULL, temp_store=MEMORY, wal_autocheckpoint=0) is written down
// in docs/STORAGE.md. Times are stored as INTEGER unix milliseconds, UTC.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store/internal/txn"
)

// busyTimeout is how long a connection waits for another process's lock.
const busyTimeout = 5 * time.Second

// driverName is go-sqlite3 with the settings a DSN cannot carry (see
// "PRAGMAs" in docs/STORAGE.md).
const driverName = "sqlite3_simgate"

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		if _, err := c.Exec("PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0", nil); err != nil {
			return fmt.Errorf("cannot configure connection: %w", err)
		}
		return nil
	}})
}

// Options configure Open. The zero value is valid.
type Options struct {
	// Synchronous is "FULL" (the default when empty) or "NORMAL". See the
	// "PRAGMAs" in docs/STORAGE.md for what NORMAL gives up.
	Synchronous string

	// Now returns the current time; nil means time.Now. Tests set it to
	// control the times written.
	Now simgate.Clock

	// Logger receives migration progress; nil discards it.
	Logger *slog.Logger

	// Create makes a new database where the file is missing although its
	// marker says simgate created one (see file.go); Open refuses that
	// otherwise (ErrDatabaseMissing). simgate migrate sets it.
	Create bool
}

// DB is an open simgate database. Its methods are safe for concurrent use.
type DB struct {
	path    string
	writer  *sql.DB     // one connection; BEGIN IMMEDIATE
	w       *txn.Writer // group commit on writer
	ckpt    *txn.Checkpointer
	reader  *sql.DB // query_only pool
	now     simgate.Clock
	logger  *slog.Logger
	applied []AppliedMigration
	guard   *fileGuard // the database file is still the one opened
	rwDSN   string     // a read-write connection's DSN, for Backup
}

// Open opens the database at path, creating the file (mode 0600) and its
// directory when missing, and applies the migrations it does not have yet.
// It returns an error wrapping ErrSchemaTooNew when the database was written
// by a newer simgate.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	return open(ctx, path, opts, migrationsFS)
}

// open is Open with the migrations taken from fsys, for tests.
func open(ctx context.Context, path string, opts Options, fsys fs.FS) (_ *DB, err error) {
	if path == "" {
		return nil, fmt.Errorf("cannot open database: no path given")
	} else if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("cannot open database %q: want a file path", path)
	}
	synchronous, err := parseSynchronous(opts.Synchronous)
	if err != nil {
		return nil, err
	}
	migrations, err := loadMigrations(fsys)
	if err != nil {
		return nil, err
	}

	db := &DB{path: path, now: opts.Now, logger: opts.Logger}
	if db.now == nil {
		db.now = time.Now
	}
	if db.logger == nil {
		db.logger = slog.New(slog.DiscardHandler)
	}

	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open database %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create database directory: %w", err)
	}
	if err := checkCreate(abs, opts.Create); err != nil {
		return nil, err
	}
	// Create the file ourselves so that it is not world-readable: it holds key
	// and code hashes and phone numbers. SQLite gives the -wal and -shm files
	// the permissions of the database file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open database: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("cannot open database: %w", err)
	}

	defer func() {
		if err != nil {
			db.Close()
		}
	}()

	// The writer is opened and used first: it switches the file to WAL, which
	// readers then find in place.
	db.rwDSN = dsn(abs, synchronous, true)
	if db.writer, err = sql.Open(driverName, db.rwDSN); err != nil {
		return nil, fmt.Errorf("cannot open database %s: %w", path, err)
	}
	db.writer.SetMaxOpenConns(1)
	db.writer.SetMaxIdleConns(1)
	db.writer.SetConnMaxLifetime(0)
	db.writer.SetConnMaxIdleTime(0)
	if err := db.writer.PingContext(ctx); err != nil {
		if isLocked(err) {
			return nil, fmt.Errorf("%w: %s is held by another process (is simgate serve running? simgate apikey and simgate backup go through it)", ErrInUse, path)
		}
		return nil, fmt.Errorf("cannot open database %s: %w", path, err)
	}
	db.w = txn.NewWriter(db.writer)
	ckpt, err := sql.Open(driverName, dsn(abs, synchronous, true))
	if err != nil {
		return nil, fmt.Errorf("cannot open database %s: %w", path, err)
	}
	ckpt.SetMaxOpenConns(1)
	db.ckpt = txn.NewCheckpointer(ckpt, db.w, abs+"-wal", db.logger.Warn)

	if db.reader, err = sql.Open(driverName, dsn(abs, synchronous, false)); err != nil {
		return nil, fmt.Errorf("cannot open database %s: %w", path, err)
	}
	n := max(4, runtime.NumCPU())
	db.reader.SetMaxOpenConns(n)
	db.reader.SetMaxIdleConns(n)

	if db.applied, err = db.migrate(ctx, migrations); err != nil {
		return nil, err
	}
	if err := writeMarker(abs, db.now()); err != nil {
		return nil, fmt.Errorf("cannot record that the database exists: %w", err)
	}
	if db.guard, err = newFileGuard(abs, db.logger.Error); err != nil {
		return nil, err
	}
	return db, nil
}

// dsn returns the go-sqlite3 data source name for the file at abs. The file:
// URI form keeps a path with '?' or '#' intact.
func dsn(abs, synchronous string, writer bool) string {
	q := url.Values{}
	q.Set("_synchronous", synchronous)
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "on")
	// Open only: Open created the file. A connection opened later, when the
	// file was deleted under the process, must not make an empty one in its
	// place (file.go).
	q.Set("mode", "rw")
	// The WAL index in the process's memory, not a mapped -shm file, and the
	// file locked to this process (see "One process" in docs/STORAGE.md).
	q.Set("vfs", "unix-excl")
	if writer {
		q.Set("_journal_mode", "WAL")
		q.Set("_txlock", "immediate")
	} else {
		q.Set("_query_only", "on")
	}
	u := url.URL{Path: filepath.ToSlash(abs)}
	return "file:" + u.EscapedPath() + "?" + q.Encode()
}

// parseSynchronous validates Options.Synchronous.
func parseSynchronous(s string) (string, error) {
	switch strings.ToUpper(s) {
	case "", "FULL":
		return "FULL", nil
	case "NORMAL":
		return "NORMAL", nil
	}
	return "", fmt.Errorf("cannot open database: synchronous %q is not FULL or NORMAL", s)
}

// ErrInUse is matched (errors.Is) by Open's error when another process
// holds the database file.
var ErrInUse = errors.New("the database is in use")

// isLocked reports whether err is SQLite's answer to a file another process
// holds.
func isLocked(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// closeTimeout bounds how long Close waits for a write transaction in
// progress before it closes the connections under it.
const closeTimeout = 5 * time.Second

// Close commits the writes already made, answering their callers, then
// closes both pools. Writes begun after Close fail. It waits up to
// closeTimeout for a write transaction in progress, not for reads.
func (db *DB) Close() error {
	var errs []error
	if db.guard != nil {
		db.guard.close()
	}
	if db.ckpt != nil {
		errs = append(errs, db.ckpt.Close())
	}
	if db.w != nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		errs = append(errs, db.w.Close(ctx))
		cancel()
	}
	if db.reader != nil {
		errs = append(errs, db.reader.Close())
	}
	// The writer goes last: the last connection to close checkpoints the WAL
	// into the database file.
	if db.writer != nil {
		errs = append(errs, db.writer.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cannot close database: %w", err)
	}
	return nil
}

// Path returns the path the database was opened with.
func (db *DB) Path() string { return db.path }

// Ping proves that the database takes writes, by rewriting the heartbeat row
// in a transaction, and that the reader pool can read it back. Readiness
// checks use it: a full disk or a read-only file fails here.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.guard.check(); err != nil {
		return err
	}
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot ping database: %w", err)
	}
	defer tx.Rollback()

	if _, err := tx.ExecContext(ctx, `
		INSERT INTO heartbeat (id, at) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET at = excluded.at
	`, tx.now.UnixMilli()); err != nil {
		return fmt.Errorf("cannot ping database: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot ping database: %w", err)
	}

	var at int64
	if err := db.reader.QueryRowContext(ctx, `SELECT at FROM heartbeat WHERE id = 1`).Scan(&at); err != nil {
		return fmt.Errorf("cannot ping database reader: %w", err)
	}
	return nil
}

// execAlone runs the one statement of stmt in a write transaction of its
// own and returns how many rows it changed. Errors begin "cannot " + what.
func (db *DB) execAlone(ctx context.Context, what string, stmt func(tx *tx) (sql.Result, error)) (int64, error) {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot %s: %w", what, err)
	}
	defer tx.Rollback()
	res, err := stmt(tx)
	if err != nil {
		return 0, fmt.Errorf("cannot %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("cannot %s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cannot %s: %w", what, err)
	}
	return n, nil
}

// tx is a transaction with the time it started: every time written in one
// transaction is the same. A write transaction (beginTx) is a savepoint in the
// writer's current batch; a read transaction (beginReadTx) is a transaction on
// the reader pool. Both have the methods of *sql.Tx that the store uses.
type tx struct {
	db  *DB
	now time.Time
	r   *sql.Tx // a read transaction, or nil
	w   *txn.Tx // a write transaction, or nil
}

// beginTx starts a write transaction: a savepoint in the writer's batch,
// which starts with BEGIN IMMEDIATE. Its Commit returns once the batch is
// committed. While the WAL is stuck the writer refuses it (txn.Checkpointer).
func (db *DB) beginTx(ctx context.Context) (*tx, error) {
	if db.guard != nil {
		if err := db.guard.lost.Load(); err != nil {
			return nil, *err
		}
	}
	w, err := db.w.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &tx{w: w, db: db, now: db.now().UTC().Truncate(time.Millisecond)}, nil
}

// beginReadTx starts a read transaction on the reader pool. Its queries see
// one snapshot of the database.
func (db *DB) beginReadTx(ctx context.Context) (*tx, error) {
	t, err := db.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return &tx{r: t, db: db, now: db.now().UTC().Truncate(time.Millisecond)}, nil
}

func (t *tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t.r != nil {
		return t.r.ExecContext(ctx, query, args...)
	}
	res, err := t.w.ExecContext(ctx, query, args...)
	return res, t.db.checkFull(err)
}

func (t *tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if t.r != nil {
		return t.r.QueryContext(ctx, query, args...)
	}
	return t.w.QueryContext(ctx, query, args...)
}

func (t *tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if t.r != nil {
		return t.r.QueryRowContext(ctx, query, args...)
	}
	return t.w.QueryRowContext(ctx, query, args...)
}

// Commit commits the transaction. A write transaction's Commit returns once
// the batch holding it is durable, with the batch's COMMIT error.
func (t *tx) Commit() error {
	if t.r != nil {
		return t.r.Commit()
	}
	return t.db.checkFull(t.w.Commit())
}

// Rollback rolls the transaction back; after Commit it does nothing.
func (t *tx) Rollback() error {
	if t.r != nil {
		return t.r.Rollback()
	}
	return t.w.Rollback()
}

// millis returns t as unix milliseconds, or nil for the zero time so that
// "not set" is NULL in the database.
func millis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// fromMillis is the inverse of millis.
func fromMillis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUniqueViolation(err error) bool {
	var e sqlite3.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.ExtendedCode == sqlite3.ErrConstraintUnique || e.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
}

// notFound returns the domain error for a missing object.
func notFound(kind, id string) error {
	return simgate.Errorf(simgate.CodeNotFound, "%s %q not found", kind, id)
}
