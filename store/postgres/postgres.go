// Package postgres keeps simgate's state in PostgreSQL (14 or newer)
// through github.com/jackc/pgx/v5, so that several gateway hosts can share
// one database.
//
// It is being built (issue "Several gateway hosts on one PostgreSQL"). So
// far it opens a database and brings its schema up to date, safely when
// several hosts start at once, and keeps API keys (apikey.go), services
// (service.go), the API's budgets as one count for the cluster
// (budget.go), verifications with
// their transaction, simgate.VerificationTx, and alerts (verification.go,
// alert.go), messages with their transaction, simgate.MessageTx, and the
// rest of the queue's store (messagetx.go, message.go, report.go, queue.go),
// received messages, opt-outs and the modems' daily usage (inbound.go),
// Idempotency-Keys (idempotency.go), the console's sessions and the SIMs'
// rejected PINs (session.go), the webhook outbox, fanned out and claimed by
// one host at a time (webhook.go), inbound calls and what metrics read
// (calls.go; the counts of statuses are a log of changes that every host
// folds every few seconds, fold.go), the console's hourly rollups and
// balance readings (rollup.go), readiness and the console's verifications
// (health.go), and the modems' identities (modem.go): every store
// interface the services and adapters declare, passing the same contract
// tests as the SQLite store (store/storetest). ImportSQLite
// (importsqlite.go) copies a SQLite database into an empty one, for
// simgate migrate --from.
package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store/internal/schema"
)

// migrationsFS holds the PostgreSQL form of the schema, numbered like the
// SQLite store's migrations (store/migrations); a released file is never
// edited.
//
//go:embed migrations/*.sql
var migrationsFS embed.FS

// migrationLock is the key of the advisory lock that hosts starting at once
// take while they migrate, so that one applies each migration and the others
// find it applied. It is "simgate" in ASCII.
const migrationLock int64 = 0x73696d67617465

// DefaultMaxConns is how many connections a DB opens at most when its
// connection string does not say (pool_max_conns). pgxpool's own default,
// four or the number of CPUs if more, counts the CPUs of the gateway's
// host, not what the database can take: with four, at most four API
// requests are in a transaction at a time, each holding its connection
// through its commit's flush, and the others queue for a connection
// (docs/BENCHMARKS.md, "PostgreSQL").
const DefaultMaxConns = 16

// setsPoolSize reports whether dsn (a URL or key=value connection string)
// sets pool_max_conns.
func setsPoolSize(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return u.Query().Has("pool_max_conns")
	}
	for _, f := range strings.Fields(dsn) {
		if strings.HasPrefix(f, "pool_max_conns=") {
			return true
		}
	}
	return false
}

// Options configure Open. The zero value is valid.
type Options struct {
	// Logger receives migration progress; nil discards it.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. Every time a
	// transaction writes is the same one, taken at its start, as in the
	// SQLite store, so that tests control what is written.
	Now simgate.Clock
	// FoldInterval is how often the DB folds the counts of statuses
	// (fold.go); zero means DefaultFoldInterval, a negative value never
	// (for tests that fold themselves).
	FoldInterval time.Duration
}

// DB is an open simgate database on PostgreSQL. Its methods are safe for
// concurrent use.
type DB struct {
	pool    conns
	now     simgate.Clock
	name    string // the connection string without its password, for errors
	logger  *slog.Logger
	applied []schema.Applied
	takes   atomic.Int64 // TakeTokens calls, to purge full buckets every so often

	stop context.CancelFunc // ends the folder (fold.go)
	wg   sync.WaitGroup
}

// Open connects to the database of dsn (a postgres:// URL or key=value
// connection string), checks that the server is PostgreSQL 14 or newer,
// and applies the migrations it does not have yet. It returns an error
// wrapping schema.ErrTooNew (store.ErrSchemaTooNew) when the database was
// written by a newer simgate.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	return open(ctx, dsn, opts, migrationsFS)
}

// open is Open with the migrations taken from fsys, for tests.
func open(ctx context.Context, dsn string, opts Options, fsys fs.FS) (_ *DB, err error) {
	db := &DB{name: redact(dsn), logger: opts.Logger, now: opts.Now}
	if db.logger == nil {
		db.logger = slog.New(slog.DiscardHandler)
	}
	if db.now == nil {
		db.now = time.Now
	}
	ms, err := schema.Load(fsys, "migrations")
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("cannot open database %s: %w", db.name, err)
	}
	if !setsPoolSize(dsn) {
		cfg.MaxConns = max(cfg.MaxConns, DefaultMaxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot open database %s: %w", db.name, err)
	}
	db.pool = conns{pool}
	defer func() {
		if err != nil {
			db.pool.Close()
		}
	}()
	var version int
	if err := db.pool.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		return nil, fmt.Errorf("cannot open database %s: %w", db.name, err)
	}
	if version < 140000 {
		return nil, fmt.Errorf("cannot open database %s: the server is PostgreSQL %d.%d; simgate needs 14 or newer",
			db.name, version/10000, version%10000)
	}
	if db.applied, err = db.migrate(ctx, ms); err != nil {
		return nil, err
	}
	folding, stop := context.WithCancel(context.Background())
	db.stop = stop
	if every := cmp.Or(opts.FoldInterval, DefaultFoldInterval); every > 0 {
		db.wg.Add(1)
		go db.folder(folding, every)
	}
	return db, nil
}

// Close stops the folder, then closes the connections.
func (db *DB) Close() error {
	db.stop()
	db.wg.Wait()
	db.pool.Close()
	return nil
}

// Applied returns the migrations that Open applied, oldest first; it is
// empty when the database was already up to date.
func (db *DB) Applied() []schema.Applied {
	return append([]schema.Applied(nil), db.applied...)
}

// migrate refuses a database newer than ms, then applies each migration of
// ms the database does not have yet, each in its own transaction, holding
// the migration lock, so that hosts that start together apply each once.
func (db *DB) migrate(ctx context.Context, ms []schema.Migration) ([]schema.Applied, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot migrate database %s: %w", db.name, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return nil, fmt.Errorf("cannot migrate database %s: %w", db.name, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)

	// applied_at is text (RFC 3339), as in the SQLite store, so that it
	// reads well in psql when someone investigates an upgrade.
	if _, err := conn.Exec(ctx, `
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at TEXT    NOT NULL
		)
	`); err != nil {
		return nil, fmt.Errorf("cannot create migrations table in %s: %w", db.name, err)
	}
	var current int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return nil, fmt.Errorf("cannot read schema version of %s: %w", db.name, err)
	}
	if known := schema.Latest(ms); current > known {
		return nil, &schema.TooNewError{Path: db.name, Version: current, Known: known}
	}
	var applied []schema.Applied
	for _, m := range ms[current:] {
		a, err := db.apply(ctx, conn.Conn(), m)
		if err != nil {
			return applied, err
		}
		applied = append(applied, a)
		db.logger.Info("applied migration", "version", a.Version, "name", a.Name)
	}
	return applied, nil
}

// apply runs m and records it, in one transaction. The file goes through
// the simple protocol, which takes several statements at once.
func (db *DB) apply(ctx context.Context, conn *pgx.Conn, m schema.Migration) (schema.Applied, error) {
	a := schema.Applied{Version: m.Version, Name: m.Name, AppliedAt: time.Now().UTC()}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return a, fmt.Errorf("cannot apply migration %s to %s: %w", a, db.name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Conn().PgConn().Exec(ctx, m.SQL).ReadAll(); err != nil {
		return a, fmt.Errorf("cannot apply migration %s to %s: %w", a, db.name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		a.Version, a.Name, a.AppliedAt.Format(time.RFC3339Nano)); err != nil {
		return a, fmt.Errorf("cannot record migration %s in %s: %w", a, db.name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return a, fmt.Errorf("cannot apply migration %s to %s: %w", a, db.name, err)
	}
	return a, nil
}

// redact returns dsn without a password, to name the database in errors
// and logs.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return "(an unparsable connection string)"
		}
		return fmt.Sprintf("host=%s port=%d dbname=%s user=%s", cfg.Host, cfg.Port, cfg.Database, cfg.User)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// txNow is the time of a transaction that begins now: UTC, to the
// millisecond the columns keep.
func (db *DB) txNow() time.Time { return db.now().UTC().Truncate(time.Millisecond) }

// fromMillis is the time of a nullable unix-milliseconds column; zero for
// NULL.
func fromMillis(ms *int64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return time.UnixMilli(*ms).UTC()
}

// millis is t as unix milliseconds, or nil (NULL) for the zero time: the
// inverse of fromMillis.
func millis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}

// nullIfEmpty is nil (NULL) for "", so that "not set" is NULL.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// querier is what a pool and a transaction both run queries with.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// tx is a write transaction with the time it started: every time written
// in one transaction is the same, as in the SQLite store.
type tx struct {
	pgx.Tx
	db  *DB
	now time.Time

	// lockedNumbers are the numbers whose verifications' advisory lock the
	// transaction holds (verification.go's lockNumber).
	lockedNumbers map[string]bool
}

// lockedNumber records that the transaction holds number's lock.
func (t *tx) lockedNumber(number string) {
	if t.lockedNumbers == nil {
		t.lockedNumbers = map[string]bool{}
	}
	t.lockedNumbers[number] = true
}

// update runs fn in one transaction, committed when fn returns nil and
// rolled back otherwise: the transactions of UpdateVerifications and
// UpdateMessages. fn's error is returned as it is; what names the
// transaction in the errors of beginning and committing it.
//
// A transaction PostgreSQL aborts is not run again here, for three reasons.
// fn runs once in the SQLite store and its callers rely on that: they
// change their arguments and their own variables in it (queue.Create admits
// the caller's message; RecordReport sets the report's ReceivedAt from the
// first transaction's clock, then its ID and match; verify's Start fills in
// the caller's verification from what it finds, a resend taking the
// pending one's reference and API key where the request had none), so a
// second run would start from what the first one left instead of from the
// caller's request. The transactions run at READ
// COMMITTED, where PostgreSQL never aborts with serialization_failure
// (40001). And deadlock_detected (40P01) means two transactions took their
// locks in opposite orders, which the store's lock order rules out
// (UpdateMessages, UpdateVerifications): such an abort is a bug to see, not
// to hide. The error reaches the caller, whose own retries (the
// dispatcher's, a client's) start again from the request.
func (db *DB) update(ctx context.Context, what string, fn func(*tx) error) error {
	now := db.txNow()
	t, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("cannot begin %s transaction: %w", what, err)
	}
	defer t.Rollback(context.WithoutCancel(ctx))
	if err := fn(&tx{Tx: t, db: db, now: now}); err != nil {
		return unavailable(err)
	}
	if err := t.Commit(ctx); err != nil {
		return fmt.Errorf("cannot commit %s transaction: %w", what, unavailable(err))
	}
	return nil
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// notFound is the CodeNotFound error for a missing kind with the given id.
func notFound(kind, id string) error {
	return simgate.Errorf(simgate.CodeNotFound, "%s %q not found", kind, id)
}

// SchemaVersion returns the schema version of the database: the newest
// migration applied.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("cannot read the schema version of %s: %w", db.name, err)
	}
	return v, nil
}

// Name returns the database's connection string without its password.
func (db *DB) Name() string { return db.name }
