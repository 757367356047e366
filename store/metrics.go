package store

import (
	"context"
	"fmt"
	"time"

	"github.com/simgate/simgate"
)

// StatusCounts returns how many messages and verifications the database
// holds in each status. Triggers keep the counts in status_counts as rows
// change, so this reads a few rows however large the tables grow.
func (db *DB) StatusCounts(ctx context.Context) (map[simgate.MessageStatus]int, map[simgate.VerificationStatus]int, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT entity, status, n FROM status_counts`)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot count statuses: %w", err)
	}
	defer rows.Close()
	ms, vs := map[simgate.MessageStatus]int{}, map[simgate.VerificationStatus]int{}
	for rows.Next() {
		var entity, status string
		var n int
		if err := rows.Scan(&entity, &status, &n); err != nil {
			return nil, nil, fmt.Errorf("cannot count statuses: %w", err)
		}
		if entity == "message" {
			ms[simgate.MessageStatus(status)] = n
		} else {
			vs[simgate.VerificationStatus(status)] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("cannot count statuses: %w", err)
	}
	return ms, vs, nil
}

// OldestQueued returns, for each priority with queued messages, when the
// oldest of them became due: when it was created or, for one that was
// scheduled, its send_at.
func (db *DB) OldestQueued(ctx context.Context) (map[simgate.Priority]time.Time, error) {
	rows, err := db.reader.QueryContext(ctx, `
		SELECT priority, min(max(created_at, coalesce(send_at, 0))) FROM messages WHERE status = 'queued' GROUP BY priority
	`)
	if err != nil {
		return nil, fmt.Errorf("cannot find the oldest queued messages: %w", err)
	}
	defer rows.Close()
	out := map[simgate.Priority]time.Time{}
	for rows.Next() {
		var p int
		var at int64
		if err := rows.Scan(&p, &at); err != nil {
			return nil, fmt.Errorf("cannot find the oldest queued messages: %w", err)
		}
		out[simgate.Priority(p)] = time.UnixMilli(at).UTC()
	}
	return out, rows.Err()
}

// WebhookBacklog returns how many webhook deliveries are pending, per
// endpoint, and how many events wait to be fanned out.
func (db *DB) WebhookBacklog(ctx context.Context) (pending map[string]int, undispatched int, err error) {
	rows, err := db.reader.QueryContext(ctx, `
		SELECT endpoint, count(*) FROM webhook_deliveries WHERE status = 'pending' GROUP BY endpoint
	`)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot count webhook deliveries: %w", err)
	}
	defer rows.Close()
	pending = map[string]int{}
	for rows.Next() {
		var ep string
		var n int
		if err := rows.Scan(&ep, &n); err != nil {
			return nil, 0, fmt.Errorf("cannot count webhook deliveries: %w", err)
		}
		pending[ep] = n
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("cannot count webhook deliveries: %w", err)
	}
	if err := db.reader.QueryRowContext(ctx, `SELECT count(*) FROM webhook_events WHERE dispatched = 0`).Scan(&undispatched); err != nil {
		return nil, 0, fmt.Errorf("cannot count webhook events: %w", err)
	}
	return pending, undispatched, nil
}
