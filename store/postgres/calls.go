package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
)

// CreateInboundCall records a call to a modem and sets c.ID, and c.At when it
// is zero; a call.received webhook event goes with it (the schema's
// trigger). It returns a CodeInvalid error when c has no modem.
func (db *DB) CreateInboundCall(ctx context.Context, c *simgate.InboundCall) error {
	if c.ModemID == "" {
		return simgate.Errorf(simgate.CodeInvalid, "inbound call has no modem")
	}
	if c.At.IsZero() {
		c.At = db.txNow()
	}
	rejected := 0
	if c.Rejected {
		rejected = 1
	}
	if err := db.pool.QueryRow(ctx, `
		INSERT INTO inbound_calls (modem_id, from_number, at, rejected) VALUES ($1, $2, $3, $4) RETURNING id
	`, c.ModemID, c.From, c.At.UnixMilli(), rejected).Scan(&c.ID); err != nil {
		return fmt.Errorf("cannot record inbound call: %w", err)
	}
	c.At = c.At.UTC().Truncate(time.Millisecond)
	return nil
}

// RecentInboundCalls returns the calls since since, newest first, at most
// limit.
func (db *DB) RecentInboundCalls(ctx context.Context, since time.Time, limit int) ([]*simgate.InboundCall, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT id, modem_id, from_number, at, rejected FROM inbound_calls
		WHERE at >= $1 ORDER BY id DESC LIMIT $2`, since.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list inbound calls: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*simgate.InboundCall, error) {
		var c simgate.InboundCall
		var at int64
		var rejected int
		if err := row.Scan(&c.ID, &c.ModemID, &c.From, &at, &rejected); err != nil {
			return nil, err
		}
		c.At, c.Rejected = time.UnixMilli(at).UTC(), rejected == 1
		return &c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot list inbound calls: %w", err)
	}
	return out, nil
}

// StatusCounts returns how many messages and verifications the database
// holds in each status. The schema's triggers log every change of a count
// in status_counts, and the folder (fold.go) folds the log every few
// seconds, so this sums a few rows and the changes since the last fold
// however large the tables grow.
func (db *DB) StatusCounts(ctx context.Context) (map[simgate.MessageStatus]int, map[simgate.VerificationStatus]int, error) {
	rows, err := db.pool.Query(ctx, `SELECT entity, status, sum(n)::bigint FROM status_counts GROUP BY entity, status`)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot count statuses: %w", err)
	}
	ms, vs := map[simgate.MessageStatus]int{}, map[simgate.VerificationStatus]int{}
	var entity, status string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&entity, &status, &n}, func() error {
		if entity == "message" {
			ms[simgate.MessageStatus(status)] = n
		} else {
			vs[simgate.VerificationStatus(status)] = n
		}
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("cannot count statuses: %w", err)
	}
	return ms, vs, nil
}

// OldestQueued returns, for each priority with queued messages, when the
// oldest of them became due: when it was created or, for one that was
// scheduled, its send_at.
func (db *DB) OldestQueued(ctx context.Context) (map[simgate.Priority]time.Time, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT priority, min(GREATEST(created_at, coalesce(send_at, 0))) FROM messages WHERE status = 'queued' GROUP BY priority
	`)
	if err != nil {
		return nil, fmt.Errorf("cannot find the oldest queued messages: %w", err)
	}
	out := map[simgate.Priority]time.Time{}
	var p int
	var at int64
	if _, err := pgx.ForEachRow(rows, []any{&p, &at}, func() error {
		out[simgate.Priority(p)] = time.UnixMilli(at).UTC()
		return nil
	}); err != nil {
		return nil, fmt.Errorf("cannot find the oldest queued messages: %w", err)
	}
	return out, nil
}

// WebhookBacklog returns how many webhook deliveries are pending, per
// endpoint, and how many events wait to be fanned out.
func (db *DB) WebhookBacklog(ctx context.Context) (pending map[string]int, undispatched int, err error) {
	rows, err := db.pool.Query(ctx, `SELECT endpoint, count(*) FROM webhook_deliveries WHERE status = 'pending' GROUP BY endpoint`)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot count webhook deliveries: %w", err)
	}
	pending = map[string]int{}
	var ep string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&ep, &n}, func() error {
		pending[ep] = n
		return nil
	}); err != nil {
		return nil, 0, fmt.Errorf("cannot count webhook deliveries: %w", err)
	}
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM webhook_events WHERE dispatched = 0`).Scan(&undispatched); err != nil {
		return nil, 0, fmt.Errorf("cannot count webhook events: %w", err)
	}
	return pending, undispatched, nil
}
