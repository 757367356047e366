package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store/internal/rowcodec"
)

// Page sizes of ListWebhookDeliveries.
const (
	DefaultDeliveryLimit = 100
	MaxDeliveryLimit     = 1000
)

// RecordModemState records that modemID is up or down and, when that differs
// from what was last recorded, writes the modem.up or modem.down event with
// data in the same transaction. A modem first seen up is recorded without an
// event: only a change is news, and only when an endpoint subscribes to its
// type (SetWebhookSubscriptions). It reports whether an event was written.
func (db *DB) RecordModemState(ctx context.Context, modemID string, up bool, data any) (bool, error) {
	state, typ := "down", simgate.EventModemDown
	if up {
		state, typ = "up", simgate.EventModemUp
	}
	payload, err := json.Marshal(data)
	if err != nil {
		return false, fmt.Errorf("cannot record modem state: %w", err)
	}
	tx, err := db.beginTx(ctx)
	if err != nil {
		return false, fmt.Errorf("cannot record modem state: %w", err)
	}
	defer tx.Rollback()

	var last string
	err = tx.QueryRowContext(ctx, `SELECT state FROM webhook_modem_states WHERE modem_id = ?`, modemID).Scan(&last)
	if err != nil && err != sql.ErrNoRows {
		return false, fmt.Errorf("cannot record modem state: %w", err)
	}
	if last == state || (last == "" && up) {
		if last == "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_modem_states (modem_id, state, at) VALUES (?, ?, ?)`,
				modemID, state, tx.now.UnixMilli()); err != nil {
				return false, fmt.Errorf("cannot record modem state: %w", err)
			}
			return false, tx.Commit()
		}
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO webhook_modem_states (modem_id, state, at) VALUES (?, ?, ?)
		ON CONFLICT (modem_id) DO UPDATE SET state = excluded.state, at = excluded.at
	`, modemID, state, tx.now.UnixMilli()); err != nil {
		return false, fmt.Errorf("cannot record modem state: %w", err)
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO webhook_events (id, type, payload, created_at)
		SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = ?)
	`, simgate.NewID("evt", tx.now), typ, string(payload), tx.now.UnixMilli(), typ)
	if err != nil {
		return false, fmt.Errorf("cannot record modem state: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("cannot record modem state: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("cannot record modem state: %w", err)
	}
	return n > 0, nil
}

// SetWebhookSubscriptions replaces the event types the outbox records with
// types: those some endpoint subscribes to. Changes of other types write no
// event (the triggers of migration 0002 and RecordModemState look here).
func (db *DB) SetWebhookSubscriptions(ctx context.Context, types []string) error {
	for _, t := range types {
		if !slices.Contains(simgate.EventTypes, t) {
			return simgate.Errorf(simgate.CodeInvalid, "unknown webhook event type %q", t)
		}
	}
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot set webhook subscriptions: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_subscriptions`); err != nil {
		return fmt.Errorf("cannot set webhook subscriptions: %w", err)
	}
	for _, t := range types {
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_subscriptions (type) VALUES (?) ON CONFLICT DO NOTHING`, t); err != nil {
			return fmt.Errorf("cannot set webhook subscriptions: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot set webhook subscriptions: %w", err)
	}
	return nil
}

// FanOutWebhookEvents turns up to limit new events, oldest first, into one
// pending delivery per endpoint that subscribers lists for the event's type
// (event type -> endpoint names), due at once. An event no endpoint subscribes to is deleted. It returns how
// many events it handled; the caller repeats while that is limit.
func (db *DB) FanOutWebhookEvents(ctx context.Context, subscribers map[string][]string, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	// Look on the reader first: an idle outbox costs no write.
	var n int
	if err := db.reader.QueryRowContext(ctx, `SELECT count(*) FROM webhook_events WHERE dispatched = 0`).Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot fan out webhook events: %w", err)
	} else if n == 0 {
		return 0, nil
	}

	tx, err := db.beginTx(ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot fan out webhook events: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `
		SELECT id, type, created_at FROM webhook_events WHERE dispatched = 0 ORDER BY rowid LIMIT ?
	`, limit)
	if err != nil {
		return 0, fmt.Errorf("cannot fan out webhook events: %w", err)
	}
	type ev struct {
		id, typ string
		at      int64
	}
	var evs []ev
	for rows.Next() {
		var e ev
		if err := rows.Scan(&e.id, &e.typ, &e.at); err != nil {
			rows.Close()
			return 0, fmt.Errorf("cannot fan out webhook events: %w", err)
		}
		evs = append(evs, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("cannot fan out webhook events: %w", err)
	}
	for _, e := range evs {
		eps := subscribers[e.typ]
		if len(eps) == 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_events WHERE id = ?`, e.id); err != nil {
				return 0, fmt.Errorf("cannot fan out webhook events: %w", err)
			}
			continue
		}
		for _, ep := range eps {
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO webhook_deliveries (event_id, endpoint, next_attempt_at, created_at) VALUES (?, ?, ?, ?)
				ON CONFLICT DO NOTHING
			`, e.id, ep, tx.now.UnixMilli(), e.at); err != nil {
				return 0, fmt.Errorf("cannot fan out webhook events: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_events SET dispatched = 1 WHERE id = ?`, e.id); err != nil {
			return 0, fmt.Errorf("cannot fan out webhook events: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cannot fan out webhook events: %w", err)
	}
	return len(evs), nil
}

// ClaimWebhookDeliveries takes up to limit pending deliveries that are due,
// earliest first, and pushes their next attempt lease into the future before
// the caller POSTs them: a crash during the POST retries them after the
// lease instead of losing them. It counts the attempt.
func (db *DB) ClaimWebhookDeliveries(ctx context.Context, limit int, lease time.Duration) ([]*simgate.WebhookAttempt, error) {
	now := db.now().UnixMilli()
	var n int
	if err := db.reader.QueryRowContext(ctx, `
		SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?
	`, now).Scan(&n); err != nil {
		return nil, fmt.Errorf("cannot claim webhook deliveries: %w", err)
	} else if n == 0 {
		return nil, nil
	}

	tx, err := db.beginTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot claim webhook deliveries: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `
		SELECT d.event_id, d.endpoint, d.attempts, d.last_error, e.type, e.payload, e.created_at
		FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
		WHERE d.status = 'pending' AND d.next_attempt_at <= ?
		ORDER BY d.next_attempt_at
		LIMIT ?
	`, tx.now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("cannot claim webhook deliveries: %w", err)
	}
	var out []*simgate.WebhookAttempt
	for rows.Next() {
		var a simgate.WebhookAttempt
		var payload string
		var at int64
		if err := rows.Scan(&a.Delivery.EventID, &a.Delivery.Endpoint, &a.Delivery.Attempts, &a.Delivery.LastError,
			&a.Event.Type, &payload, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot claim webhook deliveries: %w", err)
		}
		a.Event.ID = a.Delivery.EventID
		a.Event.Data = json.RawMessage(payload)
		a.Event.CreatedAt = time.UnixMilli(at).UTC()
		a.Delivery.EventType = a.Event.Type
		a.Delivery.Status = simgate.DeliveryPending
		a.Delivery.CreatedAt = a.Event.CreatedAt
		a.Delivery.Attempts++
		out = append(out, &a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot claim webhook deliveries: %w", err)
	}
	until := tx.now.Add(lease).UnixMilli()
	for _, a := range out {
		a.Delivery.NextAttemptAt = time.UnixMilli(until).UTC()
		if _, err := tx.ExecContext(ctx, `
			UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ? WHERE event_id = ? AND endpoint = ?
		`, until, a.Delivery.EventID, a.Delivery.Endpoint); err != nil {
			return nil, fmt.Errorf("cannot claim webhook deliveries: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("cannot claim webhook deliveries: %w", err)
	}
	return out, nil
}

// FinishWebhookDeliveries records the outcomes of attempts, in one
// transaction. Only pending deliveries change.
func (db *DB) FinishWebhookDeliveries(ctx context.Context, os []simgate.WebhookOutcome) error {
	if len(os) == 0 {
		return nil
	}
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot finish webhook deliveries: %w", err)
	}
	defer tx.Rollback()
	for _, o := range os {
		var next, delivered any = 0, nil
		switch o.Status {
		case simgate.DeliveryDelivered:
			delivered = tx.now.UnixMilli()
		case simgate.DeliveryPending:
			next = o.NextAttemptAt.UnixMilli()
		case simgate.DeliveryFailed:
		default:
			return fmt.Errorf("cannot finish webhook delivery: status %q", o.Status)
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE webhook_deliveries SET status = ?, last_error = ?, next_attempt_at = ?, delivered_at = ?
			WHERE event_id = ? AND endpoint = ? AND status = 'pending'
		`, o.Status, o.Error, next, delivered, o.EventID, o.Endpoint); err != nil {
			return fmt.Errorf("cannot finish webhook delivery: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot finish webhook deliveries: %w", err)
	}
	return nil
}

// ListWebhookDeliveries returns a page of deliveries, newest event first,
// and the cursor of the next page ("" on the last). A bad status or cursor
// fails with simgate.CodeInvalid.
func (db *DB) ListWebhookDeliveries(ctx context.Context, f simgate.DeliveryFilter) ([]*simgate.WebhookDelivery, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultDeliveryLimit
	}
	limit = min(limit, MaxDeliveryLimit)
	var where []string
	var args []any
	switch f.Status {
	case "":
	case simgate.DeliveryPending, simgate.DeliveryDelivered, simgate.DeliveryFailed:
		where, args = append(where, "d.status = ?"), append(args, f.Status)
	default:
		return nil, "", simgate.Errorf(simgate.CodeInvalid, "status %q is not pending, delivered or failed", f.Status)
	}
	if f.Endpoint != "" {
		where, args = append(where, "d.endpoint = ?"), append(args, f.Endpoint)
	}
	if f.Cursor != "" {
		at, key, err := rowcodec.ParseCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		id, ep, _ := strings.Cut(key, "/")
		where = append(where, "(d.created_at, d.event_id, d.endpoint) < (?, ?, ?)")
		args = append(args, at, id, ep)
	}
	q := `SELECT d.event_id, e.type, d.endpoint, d.status, d.attempts, d.next_attempt_at, d.last_error, d.created_at, d.delivered_at
		FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY d.created_at DESC, d.event_id DESC, d.endpoint DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := db.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("cannot list webhook deliveries: %w", err)
	}
	defer rows.Close()
	ds := []*simgate.WebhookDelivery{}
	for rows.Next() {
		var d simgate.WebhookDelivery
		var next, created int64
		var delivered sql.NullInt64
		if err := rows.Scan(&d.EventID, &d.EventType, &d.Endpoint, &d.Status, &d.Attempts, &next, &d.LastError,
			&created, &delivered); err != nil {
			return nil, "", fmt.Errorf("cannot list webhook deliveries: %w", err)
		}
		if d.Status == simgate.DeliveryPending {
			d.NextAttemptAt = time.UnixMilli(next).UTC()
		}
		d.CreatedAt = time.UnixMilli(created).UTC()
		d.DeliveredAt = fromMillis(delivered)
		ds = append(ds, &d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("cannot list webhook deliveries: %w", err)
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		last := ds[limit-1]
		next = rowcodec.Cursor(last.CreatedAt.UnixMilli(), last.EventID+"/"+last.Endpoint)
	}
	return ds, next, nil
}

// PurgeWebhookEvents deletes events created before before that have no
// pending delivery, with their deliveries, and returns how many events it
// deleted. It bounds the outbox: run it with a cut-off some days back, longer
// than the retry period.
func (db *DB) PurgeWebhookEvents(ctx context.Context, before time.Time) (int64, error) {
	return db.execAlone(ctx, "purge webhook events", func(tx *tx) (sql.Result, error) {
		return tx.ExecContext(ctx, `
			DELETE FROM webhook_events
			WHERE created_at < ? AND dispatched = 1
				AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id AND d.status = 'pending')
		`, before.UnixMilli())
	})
}
