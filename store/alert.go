package store

import (
	"context"
	"fmt"
	"time"

	"github.com/simgate/simgate"
)

// CreateAlert records an alert of kind about subject.
func (db *DB) CreateAlert(ctx context.Context, kind, subject, detail string) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot create alert: %w", err)
	}
	defer tx.Rollback()

	if err := createAlert(ctx, tx, kind, subject, detail); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot create alert: %w", err)
	}
	return nil
}

// CreateAlertOnce records an alert of kind about subject unless one was
// recorded within the last period, and reports whether it recorded one. The
// owner notice uses it to text a number at most once a day.
func (db *DB) CreateAlertOnce(ctx context.Context, kind, subject, detail string, period time.Duration) (bool, error) {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return false, fmt.Errorf("cannot create alert: %w", err)
	}
	defer tx.Rollback()

	if ok, err := createAlertOnce(ctx, tx, kind, subject, detail, period); err != nil || !ok {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("cannot create alert: %w", err)
	}
	return true, nil
}

// ListAlerts returns up to limit alerts with an id above afterID, oldest
// first; a limit of 0 or less means 100.
func (db *DB) ListAlerts(ctx context.Context, afterID int64, limit int) ([]*simgate.Alert, error) {
	if limit <= 0 {
		limit = 100
	}
	tx, err := db.beginReadTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot list alerts: %w", err)
	}
	defer tx.Rollback()

	rows, err := tx.QueryContext(ctx, `
		SELECT id, kind, subject, detail, at FROM alerts WHERE id > ? ORDER BY id LIMIT ?
	`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list alerts: %w", err)
	}
	defer rows.Close()
	as := []*simgate.Alert{}
	for rows.Next() {
		var a simgate.Alert
		var at int64
		if err := rows.Scan(&a.ID, &a.Kind, &a.Subject, &a.Detail, &at); err != nil {
			return nil, fmt.Errorf("cannot list alerts: %w", err)
		}
		a.At = time.UnixMilli(at).UTC()
		as = append(as, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list alerts: %w", err)
	}
	return as, nil
}

func createAlert(ctx context.Context, tx *tx, kind, subject, detail string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO alerts (kind, subject, detail, at) VALUES (?, ?, ?, ?)`,
		kind, subject, detail, tx.now.UnixMilli()); err != nil {
		return fmt.Errorf("cannot create alert: %w", err)
	}
	tx.db.logger.Warn("alert", "kind", kind, "subject", subject, "detail", detail)
	return nil
}

// createAlertOnce records an alert unless one of kind about subject was
// recorded within period, and reports whether it recorded one.
func createAlertOnce(ctx context.Context, tx *tx, kind, subject, detail string, period time.Duration) (bool, error) {
	n, err := countAlerts(ctx, tx, kind, subject, tx.now.Add(-period))
	if err != nil || n > 0 {
		return false, err
	}
	return true, createAlert(ctx, tx, kind, subject, detail)
}

func countAlerts(ctx context.Context, tx *tx, kind, subject string, since time.Time) (int, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM alerts WHERE kind = ? AND subject = ? AND at >= ?`,
		kind, subject, since.UnixMilli()).Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot count alerts: %w", err)
	}
	return n, nil
}
