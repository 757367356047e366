package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
)

// CreateAlert records an alert of kind about subject.
func (db *DB) CreateAlert(ctx context.Context, kind, subject, detail string) error {
	return db.update(ctx, "alert", func(tx *tx) error { return createAlert(ctx, tx, kind, subject, detail) })
}

// CreateAlertOnce records an alert of kind about subject unless one was
// recorded within the last period, and reports whether it recorded one. The
// owner notice uses it to text a number at most once a day.
func (db *DB) CreateAlertOnce(ctx context.Context, kind, subject, detail string, period time.Duration) (bool, error) {
	var ok bool
	err := db.update(ctx, "alert", func(tx *tx) error {
		var err error
		ok, err = createAlertOnce(ctx, tx, kind, subject, detail, period)
		return err
	})
	return ok && err == nil, err
}

// ListAlerts returns up to limit alerts with an id above afterID, oldest
// first; a limit of 0 or less means 100.
func (db *DB) ListAlerts(ctx context.Context, afterID int64, limit int) ([]*simgate.Alert, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.pool.Query(ctx, `
		SELECT id, kind, subject, detail, at FROM alerts WHERE id > $1 ORDER BY id LIMIT $2
	`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list alerts: %w", err)
	}
	as, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*simgate.Alert, error) {
		var a simgate.Alert
		var at int64
		if err := row.Scan(&a.ID, &a.Kind, &a.Subject, &a.Detail, &at); err != nil {
			return nil, err
		}
		a.At = time.UnixMilli(at).UTC()
		return &a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot list alerts: %w", err)
	}
	if as == nil {
		as = []*simgate.Alert{}
	}
	return as, nil
}

func createAlert(ctx context.Context, tx *tx, kind, subject, detail string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO alerts (kind, subject, detail, at) VALUES ($1, $2, $3, $4)`,
		kind, subject, detail, tx.now.UnixMilli()); err != nil {
		return fmt.Errorf("cannot create alert: %w", err)
	}
	tx.db.logger.Warn("alert", "kind", kind, "subject", subject, "detail", detail)
	return nil
}

// createAlertOnce records an alert unless one of kind about subject was
// recorded within period, and reports whether it recorded one. Hosts that
// do this at once for the same kind and subject count and record one after
// the other: the transaction holds an advisory lock of the kind and subject
// from before it counts.
func createAlertOnce(ctx context.Context, tx *tx, kind, subject, detail string, period time.Duration) (bool, error) {
	// The lock is a statement of its own: at READ COMMITTED a statement
	// sees what was committed when it began, so the count that follows
	// sees the alert of the transaction it waited for.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('alert:' || $1 || ':' || $2, 0))`,
		kind, subject); err != nil {
		return false, fmt.Errorf("cannot lock alerts: %w", err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM alerts WHERE kind = $1 AND subject = $2 AND at >= $3`,
		kind, subject, tx.now.Add(-period).UnixMilli()).Scan(&n); err != nil {
		return false, fmt.Errorf("cannot count alerts: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	return true, createAlert(ctx, tx, kind, subject, detail)
}
