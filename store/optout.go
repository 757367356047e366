package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/simgate/simgate"
)

// SetOptOut records that number (E.164) opted out with keyword when out is
// true, and removes its opt-out otherwise. Both are idempotent, so that an
// inbound SMS handled twice changes nothing the second time.
func (db *DB) SetOptOut(ctx context.Context, number, keyword string, out bool) error {
	if number == "" {
		return simgate.Errorf(simgate.CodeInvalid, "opt-out has no number")
	}
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot record opt-out: %w", err)
	}
	defer tx.Rollback()
	if out {
		_, err = tx.ExecContext(ctx, `
			INSERT INTO opt_outs (number, keyword, at) VALUES (?, ?, ?)
			ON CONFLICT (number) DO UPDATE SET keyword = excluded.keyword, at = excluded.at
		`, number, keyword, tx.now.UnixMilli())
	} else {
		_, err = tx.ExecContext(ctx, `DELETE FROM opt_outs WHERE number = ?`, number)
	}
	if err != nil {
		return fmt.Errorf("cannot record opt-out: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot record opt-out: %w", err)
	}
	return nil
}

// OptedOut reports whether number opted out, and with which keyword.
func (db *DB) OptedOut(ctx context.Context, number string) (keyword string, ok bool, err error) {
	return optedOut(ctx, db.reader, number)
}

// optedOut reads the opt-out of number through q: the reader pool, or a
// transaction.
func optedOut(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, number string) (keyword string, ok bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT keyword FROM opt_outs WHERE number = ?`, number).Scan(&keyword)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	} else if err != nil {
		return "", false, fmt.Errorf("cannot look up opt-out: %w", err)
	}
	return keyword, true, nil
}
