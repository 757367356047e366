package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/simgate/simgate"
)

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

func (t messageTx) DueScheduledMessages(ctx context.Context) ([]*simgate.UnsentMessage, error) {
	return queryUnsent(ctx, t.tx, "due scheduled messages", `
		SELECT `+unsentColumns+` FROM `+unsentFrom+` WHERE m.status = 'scheduled' AND m.send_at <= ?
	`, t.tx.now.UnixMilli())
}

func (t messageTx) QueueDueScheduled(ctx context.Context, reason string) (int, error) {
	now := t.tx.now.UnixMilli()
	if _, err := t.tx.ExecContext(ctx, `
		INSERT INTO message_events (message_id, at, status, reason)
		SELECT id, ?, 'queued', ? FROM messages WHERE status = 'scheduled' AND send_at <= ?
	`, now, reason, now); err != nil {
		return 0, fmt.Errorf("cannot record message event: %w", err)
	}
	res, err := t.tx.ExecContext(ctx, `
		UPDATE messages SET status = 'queued', reason = ?, updated_at = ?
		WHERE status = 'scheduled' AND send_at <= ?
	`, reason, now, now)
	if err != nil {
		return 0, fmt.Errorf("cannot queue scheduled messages: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("cannot queue scheduled messages: %w", err)
	}
	return int(n), nil
}
