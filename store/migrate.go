package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/simgate/simgate/store/internal/schema"
)

// migrationsFS holds the schema migrations. A file is named NNNN_name.sql;
// versions start at 1 and have no gaps. A released migration is never edited:
// a change to the schema is a new file.
//
// A migration runs inside a transaction, where PRAGMA foreign_keys cannot be
// changed; one that rebuilds a table uses PRAGMA defer_foreign_keys=ON
// instead. Foreign keys are checked before it commits.
//
//go:embed migrations/*.sql
var migrationsFS embed.FS

// ErrSchemaTooNew is matched (errors.Is) by the error Open returns for a
// database whose schema is newer than this build of simgate knows. Use
// errors.As with *SchemaTooNewError for the versions.
var ErrSchemaTooNew = schema.ErrTooNew

// SchemaTooNewError is returned by Open for a database written by a newer
// simgate (schema.TooNewError).
type SchemaTooNewError = schema.TooNewError

// AppliedMigration is a migration recorded in the database.
type AppliedMigration = schema.Applied

// migration is one embedded migration file.
type migration = schema.Migration

// loadMigrations reads migrations/*.sql from fsys (schema.Load).
func loadMigrations(fsys fs.FS) ([]migration, error) { return schema.Load(fsys, "migrations") }

// LatestSchemaVersion returns the newest schema version this build of simgate
// knows, which is the version Open brings a database to.
func LatestSchemaVersion() int {
	ms, err := loadMigrations(migrationsFS)
	if err != nil {
		return 0
	}
	return schema.Latest(ms)
}

// migrate refuses a database newer than ms, then applies each migration in
// ms the database does not have yet, each in its own transaction. It returns
// the migrations it applied.
func (db *DB) migrate(ctx context.Context, ms []migration) ([]AppliedMigration, error) {
	known := schema.Latest(ms)
	if err := db.prepareMigrations(ctx, known); err != nil {
		return nil, err
	}

	var applied []AppliedMigration
	for _, m := range ms {
		a, ok, err := db.applyMigration(ctx, m)
		if err != nil {
			return applied, err
		} else if ok {
			applied = append(applied, a)
			db.logger.Info("applied migration", "version", a.Version, "name", a.Name)
		}
	}
	return applied, nil
}

// prepareMigrations checks the schema version, then creates the
// schema_migrations table if needed. A database that is too new is left
// untouched.
func (db *DB) prepareMigrations(ctx context.Context, known int) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot migrate database: %w", err)
	}
	defer tx.Rollback()

	version, err := schemaVersion(ctx, tx)
	if err != nil {
		return fmt.Errorf("cannot migrate database: %w", err)
	} else if version > known {
		return &SchemaTooNewError{Path: db.path, Version: version, Known: known}
	}

	// applied_at is TEXT (RFC 3339), unlike the times of the other tables,
	// so that it reads well in the sqlite3 shell when someone investigates an
	// upgrade.
	if _, err := tx.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at TEXT    NOT NULL
		) STRICT
	`); err != nil {
		return fmt.Errorf("cannot create migrations table: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot create migrations table: %w", err)
	}
	return nil
}

// applyMigration applies m unless it is recorded already, and reports whether
// it did. The check runs in the same BEGIN IMMEDIATE transaction as the
// change, so two processes migrating at once cannot both apply it.
func (db *DB) applyMigration(ctx context.Context, m migration) (_ AppliedMigration, ok bool, err error) {
	a := AppliedMigration{Version: m.Version, Name: m.Name}

	tx, err := db.beginTx(ctx)
	if err != nil {
		return a, false, fmt.Errorf("cannot apply migration %s: %w", a, err)
	}
	defer tx.Rollback()

	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return a, false, fmt.Errorf("cannot apply migration %s: %w", a, err)
	} else if n != 0 {
		return a, false, nil
	}

	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return a, false, fmt.Errorf("cannot apply migration %s: %w", a, err)
	}
	if err := foreignKeyCheck(ctx, tx); err != nil {
		return a, false, fmt.Errorf("cannot apply migration %s: %w", a, err)
	}

	a.AppliedAt = tx.now
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		a.Version, a.Name, a.AppliedAt.Format(time.RFC3339Nano)); err != nil {
		return a, false, fmt.Errorf("cannot record migration %s: %w", a, err)
	}
	// PRAGMA takes no parameters; the version is an int, not input.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, a.Version)); err != nil {
		return a, false, fmt.Errorf("cannot record migration %s: %w", a, err)
	}
	if err := tx.Commit(); err != nil {
		return a, false, fmt.Errorf("cannot apply migration %s: %w", a, err)
	}
	return a, true, nil
}

// foreignKeyCheck fails if any foreign key is violated.
func foreignKeyCheck(ctx context.Context, tx *tx) error {
	rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		return fmt.Errorf("foreign key violated")
	}
	return rows.Err()
}

// schemaVersion returns the larger of PRAGMA user_version and the newest
// version in schema_migrations: either alone may have been set by hand.
func schemaVersion(ctx context.Context, tx *tx) (int, error) {
	var userVersion int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&userVersion); err != nil {
		return 0, fmt.Errorf("cannot read user_version: %w", err)
	}
	var exists bool
	if err := tx.QueryRowContext(ctx, `
		SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations')
	`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("cannot look for schema_migrations: %w", err)
	} else if !exists {
		return userVersion, nil
	}
	var recorded int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&recorded); err != nil {
		return 0, fmt.Errorf("cannot read schema_migrations: %w", err)
	}
	return max(userVersion, recorded), nil
}

// SchemaVersion returns the schema version of the database: the newest
// migration applied.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	tx, err := db.beginReadTx(ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot read schema version: %w", err)
	}
	defer tx.Rollback()
	return schemaVersion(ctx, tx)
}

// Applied returns the migrations that Open applied, oldest first; it is
// empty when the database was already up to date.
func (db *DB) Applied() []AppliedMigration {
	return append([]AppliedMigration(nil), db.applied...)
}

// Migrations returns every migration recorded in the database, oldest first.
func (db *DB) Migrations(ctx context.Context) ([]AppliedMigration, error) {
	tx, err := db.beginReadTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot list migrations: %w", err)
	}
	defer tx.Rollback()

	rows, err := tx.QueryContext(ctx, `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("cannot list migrations: %w", err)
	}
	defer rows.Close()

	var ms []AppliedMigration
	for rows.Next() {
		var m AppliedMigration
		var at string
		if err := rows.Scan(&m.Version, &m.Name, &at); err != nil {
			return nil, fmt.Errorf("cannot list migrations: %w", err)
		}
		if m.AppliedAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return nil, fmt.Errorf("cannot list migrations: migration %d: %w", m.Version, err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list migrations: %w", err)
	}
	return ms, nil
}
