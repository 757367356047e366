package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/simgate/simgate"
)

// ReasonScheduledTimeReached is the reason, and the event, of a scheduled
// message that became queued because its send_at came.
const ReasonScheduledTimeReached = "scheduled time reached"

// NextScheduled returns the earliest send_at of the scheduled messages, or
// the zero time when none is scheduled. The dispatcher arms its timer for it.
func (db *DB) NextScheduled(ctx context.Context) (time.Time, error) {
	var at sql.NullInt64
	if err := db.reader.QueryRowContext(ctx, `
		SELECT min(send_at) FROM messages WHERE status = 'scheduled'
	`).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("cannot find the next scheduled message: %w", err)
	}
	return fromMillis(at), nil
}

// ReleaseScheduled makes the scheduled messages whose send_at has come
// queued, with the event ReasonScheduledTimeReached, and returns how many
// it queued; they are due at once (next_attempt_at is their send_at). One
// whose expiry came too (simgate was not running at its send_at) ends
// expired instead.
func (db *DB) ReleaseScheduled(ctx context.Context) (int, error) {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot queue scheduled messages: %w", err)
	}
	defer tx.Rollback()
	now := tx.now.UnixMilli()

	rows, err := tx.QueryContext(ctx, `
		SELECT id, send_at FROM messages WHERE status = 'scheduled' AND send_at <= ? AND expires_at <= ?
	`, now, now)
	if err != nil {
		return 0, fmt.Errorf("cannot queue scheduled messages: %w", err)
	}
	type row struct {
		id     string
		sendAt int64
	}
	var expired []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.sendAt); err != nil {
			rows.Close()
			return 0, fmt.Errorf("cannot queue scheduled messages: %w", err)
		}
		expired = append(expired, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("cannot queue scheduled messages: %w", err)
	}
	for _, r := range expired {
		reason := "expired before it could be sent (scheduled for " +
			time.UnixMilli(r.sendAt).UTC().Format(time.RFC3339Nano) + ")"
		if err := endUnsent(ctx, tx, r.id, simgate.StatusExpired, reason); err != nil {
			return 0, err
		}
	}

	if _, err := tx.ExecContext(ctx, `
		INSERT INTO message_events (message_id, at, status, reason)
		SELECT id, ?, 'queued', ? FROM messages WHERE status = 'scheduled' AND send_at <= ?
	`, now, ReasonScheduledTimeReached, now); err != nil {
		return 0, fmt.Errorf("cannot record message event: %w", err)
	}
	res, err := tx.ExecContext(ctx, `
		UPDATE messages SET status = 'queued', reason = ?, updated_at = ?
		WHERE status = 'scheduled' AND send_at <= ?
	`, ReasonScheduledTimeReached, now, now)
	if err != nil {
		return 0, fmt.Errorf("cannot queue scheduled messages: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("cannot queue scheduled messages: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cannot queue scheduled messages: %w", err)
	}
	return int(n), nil
}

// ceilMilli rounds t up to the millisecond, in UTC: a time the database
// stores (unix milliseconds) that is never before t.
func ceilMilli(t time.Time) time.Time {
	ms := time.UnixMilli(t.UnixMilli()).UTC()
	if ms.Before(t) {
		ms = ms.Add(time.Millisecond)
	}
	return ms
}
