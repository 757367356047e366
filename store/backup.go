package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
)

// Backup writes a consistent copy of the database to the new file dest
// (mode 0600), with SQLite's VACUUM INTO, and flushes it to disk. It refuses
// a dest that exists. Writes go on while it runs: the copy is the database as
// of the read transaction VACUUM INTO starts with.
//
// It runs on a connection of its own, opened for the copy: the readers are
// query_only, which VACUUM INTO counts as writing, and the writer and the
// checkpointer must not wait behind a copy of the whole file.
func (db *DB) Backup(ctx context.Context, dest string) (err error) {
	f, err := os.OpenFile(dest, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cannot back up to %s: the file exists; give a new name", dest)
		}
		return fmt.Errorf("cannot back up: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(dest)
		}
	}()

	conn, err := sql.Open(driverName, db.rwDSN)
	if err != nil {
		return fmt.Errorf("cannot back up: %w", err)
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	// VACUUM INTO takes an empty file as new.
	if _, err := conn.ExecContext(ctx, `VACUUM INTO ?`, dest); err != nil {
		return fmt.Errorf("cannot back up to %s: %w", dest, err)
	}
	if err := conn.Close(); err != nil {
		return fmt.Errorf("cannot back up: %w", err)
	}
	// SQLite does not fsync the file VACUUM INTO writes.
	if f, err = os.OpenFile(dest, os.O_RDWR, 0); err != nil {
		return fmt.Errorf("cannot back up: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot back up to %s: %w", dest, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot back up to %s: %w", dest, err)
	}
	return nil
}

// ReadSnapshot runs fn in one read transaction on the reader pool, so that
// every query of fn sees the same state of the database, and ends it when fn
// returns. It is for reading the database whole, to copy it into another
// (postgres.DB.ImportSQLite, simgate migrate --from); the rest of the store
// keeps its SQL to itself. It returns fn's error as it is.
func (db *DB) ReadSnapshot(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("cannot begin a read of %s: %w", db.path, err)
	}
	defer tx.Rollback()
	return fn(tx)
}
