package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store/internal/rowcodec"
)

// The reads of messages outside a message transaction that the queue's
// dispatcher (queue.Store) and the API make, as the SQLite store does them
// (store/message.go, store/schedule.go).

// CountDue returns how many queued messages are due now.
func (db *DB) CountDue(ctx context.Context) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `
		SELECT count(*) FROM messages WHERE status = 'queued' AND next_attempt_at <= $1
	`, db.txNow().UnixMilli()).Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot count due messages: %w", err)
	}
	return n, nil
}

// NextScheduled returns the earliest send_at of the scheduled messages, or
// the zero time when none is scheduled. The dispatcher arms its timer for it.
func (db *DB) NextScheduled(ctx context.Context) (time.Time, error) {
	var at *int64
	if err := db.pool.QueryRow(ctx, `
		SELECT min(send_at) FROM messages WHERE status = 'scheduled'
	`).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("cannot find the next scheduled message: %w", err)
	}
	return fromMillis(at), nil
}

// ListMessages returns a page of messages, newest first, without their parts
// and events, and the cursor of the next page ("" on the last page). A cursor
// that is not one ListMessages returned fails with simgate.CodeInvalid.
func (db *DB) ListMessages(ctx context.Context, f simgate.MessageFilter) ([]*simgate.Message, string, error) {
	limit, err := rowcodec.MessageLimit(f)
	if err != nil {
		return nil, "", err
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(string(f.Status)))
	}
	if f.To != "" {
		where = append(where, "to_number = "+arg(f.To))
	}
	if f.VerificationID != "" {
		where = append(where, "verification_id = "+arg(f.VerificationID))
	}
	if f.Cursor != "" {
		at, id, err := rowcodec.ParseCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(created_at, id) < ("+arg(at)+", "+arg(id)+")")
	}
	q := `SELECT ` + messageColumns + ` FROM messages`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit+1)

	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("cannot list messages: %w", err)
	}
	ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*simgate.Message, error) { return scanMessage(row) })
	if err != nil {
		return nil, "", fmt.Errorf("cannot list messages: %w", err)
	}
	if ms == nil {
		ms = []*simgate.Message{}
	}
	next := ""
	if len(ms) > limit {
		ms = ms[:limit]
		last := ms[limit-1]
		next = rowcodec.Cursor(last.CreatedAt.UnixMilli(), last.ID)
	}
	return ms, next, nil
}
