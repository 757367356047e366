package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store/internal/rowcodec"
)

// Page sizes of ListWebhookDeliveries, as in the SQLite store.
const (
	defaultDeliveryLimit = 100
	maxDeliveryLimit     = 1000
)

// The outbox on several hosts: every host's sender fans out and claims, and
// each event must be fanned out once and each delivery attempted by one host
// at a time. Both read with FOR UPDATE SKIP LOCKED, so that a host takes
// only rows no other host is handling, and a claim moves the delivery's next
// attempt past a lease before its transaction ends.

// RecordModemState records that modemID is up or down and, when that
// differs from what was last recorded, writes the modem.up or modem.down
// event with data in the same transaction. A modem first seen up is
// recorded without an event: only a change is news, and only when an
// endpoint subscribes to its type (SetWebhookSubscriptions). It reports
// whether an event was written. The modem's row is locked while it is
// compared, so that two reports of one modem write one event.
func (db *DB) RecordModemState(ctx context.Context, modemID string, up bool, data any) (bool, error) {
	state, typ := "down", simgate.EventModemDown
	if up {
		state, typ = "up", simgate.EventModemUp
	}
	payload, err := json.Marshal(data)
	if err != nil {
		return false, fmt.Errorf("cannot record modem state: %w", err)
	}
	var written bool
	err = db.update(ctx, "modem state", func(tx *tx) error {
		// The first state of a modem is inserted, or found inserted by
		// another host (then compared like any other).
		tag, err := tx.Exec(ctx, `
			INSERT INTO webhook_modem_states (modem_id, state, at) VALUES ($1, $2, $3) ON CONFLICT (modem_id) DO NOTHING
		`, modemID, state, tx.now.UnixMilli())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 && up {
			return nil
		}
		if tag.RowsAffected() == 0 {
			var last string
			if err := tx.QueryRow(ctx, `SELECT state FROM webhook_modem_states WHERE modem_id = $1 FOR UPDATE`, modemID).Scan(&last); err != nil {
				return err
			}
			if last == state {
				return nil
			}
			if _, err := tx.Exec(ctx, `UPDATE webhook_modem_states SET state = $1, at = $2 WHERE modem_id = $3`,
				state, tx.now.UnixMilli(), modemID); err != nil {
				return err
			}
		}
		written, err = db.addEvent(ctx, tx, typ, payload)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("cannot record modem state: %w", err)
	}
	return written, nil
}

// RecordBalanceLow writes the modem.balance_low webhook event with data,
// when an endpoint subscribes to it, and reports whether it did.
func (db *DB) RecordBalanceLow(ctx context.Context, data any) (bool, error) {
	payload, err := json.Marshal(data)
	if err != nil {
		return false, fmt.Errorf("cannot record low balance: %w", err)
	}
	var written bool
	err = db.update(ctx, "low balance", func(tx *tx) error {
		written, err = db.addEvent(ctx, tx, simgate.EventModemBalanceLow, payload)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("cannot record low balance: %w", err)
	}
	return written, nil
}

// addEvent writes an event of typ with payload when an endpoint subscribes
// to typ, and reports whether it did. The event's id has the form the
// schema's triggers give theirs.
func (db *DB) addEvent(ctx context.Context, tx *tx, typ string, payload []byte) (bool, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO webhook_events (id, type, payload, created_at)
		SELECT simgate_event_id(), $1, $2, $3 WHERE EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = $1)
	`, typ, string(payload), tx.now.UnixMilli())
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}

// SetWebhookSubscriptions replaces the event types the outbox records with
// types: those some endpoint subscribes to. Changes of other types write no
// event.
func (db *DB) SetWebhookSubscriptions(ctx context.Context, types []string) error {
	for _, t := range types {
		if !slices.Contains(simgate.EventTypes, t) {
			return simgate.Errorf(simgate.CodeInvalid, "unknown webhook event type %q", t)
		}
	}
	err := db.update(ctx, "webhook subscriptions", func(tx *tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_subscriptions`); err != nil {
			return err
		}
		for _, t := range types {
			if _, err := tx.Exec(ctx, `INSERT INTO webhook_subscriptions (type) VALUES ($1) ON CONFLICT DO NOTHING`, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot set webhook subscriptions: %w", err)
	}
	return nil
}

// FanOutWebhookEvents turns up to limit new events, oldest first, into one
// pending delivery per endpoint that subscribers lists for the event's type
// (event type -> endpoint names), due at once. An event no endpoint
// subscribes to is deleted. It returns how many events it handled; the
// caller repeats while that is limit. Events another host is fanning out
// are skipped.
func (db *DB) FanOutWebhookEvents(ctx context.Context, subscribers map[string][]string, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	n := 0
	err := db.update(ctx, "webhook fan-out", func(tx *tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, type, created_at FROM webhook_events WHERE dispatched = 0 ORDER BY rowid LIMIT $1
			FOR UPDATE SKIP LOCKED
		`, limit)
		if err != nil {
			return err
		}
		type event struct {
			id, typ string
			at      int64
		}
		evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (event, error) {
			var e event
			return e, row.Scan(&e.id, &e.typ, &e.at)
		})
		if err != nil {
			return err
		}
		for _, e := range evs {
			eps := subscribers[e.typ]
			if len(eps) == 0 {
				if _, err := tx.Exec(ctx, `DELETE FROM webhook_events WHERE id = $1`, e.id); err != nil {
					return err
				}
				continue
			}
			for _, ep := range eps {
				if _, err := tx.Exec(ctx, `
					INSERT INTO webhook_deliveries (event_id, endpoint, next_attempt_at, created_at) VALUES ($1, $2, $3, $4)
					ON CONFLICT DO NOTHING
				`, e.id, ep, tx.now.UnixMilli(), e.at); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE webhook_events SET dispatched = 1 WHERE id = $1`, e.id); err != nil {
				return err
			}
		}
		n = len(evs)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cannot fan out webhook events: %w", err)
	}
	return n, nil
}

// ClaimWebhookDeliveries takes up to limit pending deliveries that are due,
// earliest first, and pushes their next attempt lease into the future before
// the caller POSTs them: a crash during the POST retries them after the
// lease instead of losing them. It counts the attempt. Deliveries another
// host is claiming are skipped.
func (db *DB) ClaimWebhookDeliveries(ctx context.Context, limit int, lease time.Duration) ([]*simgate.WebhookAttempt, error) {
	var out []*simgate.WebhookAttempt
	err := db.update(ctx, "webhook claim", func(tx *tx) error {
		rows, err := tx.Query(ctx, `
			SELECT d.event_id, d.endpoint, d.attempts, d.last_error, e.type, e.payload, e.created_at
			FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
			WHERE d.status = 'pending' AND d.next_attempt_at <= $1
			ORDER BY d.next_attempt_at
			LIMIT $2
			FOR UPDATE OF d SKIP LOCKED
		`, tx.now.UnixMilli(), limit)
		if err != nil {
			return err
		}
		until := tx.now.Add(lease)
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*simgate.WebhookAttempt, error) {
			var a simgate.WebhookAttempt
			var payload string
			var at int64
			if err := row.Scan(&a.Delivery.EventID, &a.Delivery.Endpoint, &a.Delivery.Attempts, &a.Delivery.LastError,
				&a.Event.Type, &payload, &at); err != nil {
				return nil, err
			}
			a.Event.ID = a.Delivery.EventID
			a.Event.Data = json.RawMessage(payload)
			a.Event.CreatedAt = time.UnixMilli(at).UTC()
			a.Delivery.EventType = a.Event.Type
			a.Delivery.Status = simgate.DeliveryPending
			a.Delivery.CreatedAt = a.Event.CreatedAt
			a.Delivery.Attempts++
			a.Delivery.NextAttemptAt = until
			return &a, nil
		})
		if err != nil {
			return err
		}
		for _, a := range out {
			if _, err := tx.Exec(ctx, `
				UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $1 WHERE event_id = $2 AND endpoint = $3
			`, until.UnixMilli(), a.Delivery.EventID, a.Delivery.Endpoint); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
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
	err := db.update(ctx, "webhook outcome", func(tx *tx) error {
		for _, o := range os {
			var next, delivered any = int64(0), nil
			switch o.Status {
			case simgate.DeliveryDelivered:
				delivered = tx.now.UnixMilli()
			case simgate.DeliveryPending:
				next = o.NextAttemptAt.UnixMilli()
			case simgate.DeliveryFailed:
			default:
				return fmt.Errorf("status %q", o.Status)
			}
			if _, err := tx.Exec(ctx, `
				UPDATE webhook_deliveries SET status = $1, last_error = $2, next_attempt_at = $3, delivered_at = $4
				WHERE event_id = $5 AND endpoint = $6 AND status = 'pending'
			`, o.Status, o.Error, next, delivered, o.EventID, o.Endpoint); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
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
		limit = defaultDeliveryLimit
	}
	limit = min(limit, maxDeliveryLimit)
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	switch f.Status {
	case "":
	case simgate.DeliveryPending, simgate.DeliveryDelivered, simgate.DeliveryFailed:
		where = append(where, "d.status = "+arg(f.Status))
	default:
		return nil, "", simgate.Errorf(simgate.CodeInvalid, "status %q is not pending, delivered or failed", f.Status)
	}
	if f.Endpoint != "" {
		where = append(where, "d.endpoint = "+arg(f.Endpoint))
	}
	if f.Cursor != "" {
		at, key, err := rowcodec.ParseCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		id, ep, _ := strings.Cut(key, "/")
		where = append(where, "(d.created_at, d.event_id, d.endpoint) < ("+arg(at)+", "+arg(id)+", "+arg(ep)+")")
	}
	q := `SELECT d.event_id, e.type, d.endpoint, d.status, d.attempts, d.next_attempt_at, d.last_error, d.created_at, d.delivered_at
		FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY d.created_at DESC, d.event_id DESC, d.endpoint DESC LIMIT ` + arg(limit+1)
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("cannot list webhook deliveries: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*simgate.WebhookDelivery, error) {
		var d simgate.WebhookDelivery
		var next, created int64
		var delivered *int64
		if err := row.Scan(&d.EventID, &d.EventType, &d.Endpoint, &d.Status, &d.Attempts, &next, &d.LastError,
			&created, &delivered); err != nil {
			return nil, err
		}
		if d.Status == simgate.DeliveryPending {
			d.NextAttemptAt = time.UnixMilli(next).UTC()
		}
		d.CreatedAt = time.UnixMilli(created).UTC()
		d.DeliveredAt = fromMillis(delivered)
		return &d, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("cannot list webhook deliveries: %w", err)
	}
	if ds == nil {
		ds = []*simgate.WebhookDelivery{}
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
// deleted.
func (db *DB) PurgeWebhookEvents(ctx context.Context, before time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, `
		DELETE FROM webhook_events
		WHERE created_at < $1 AND dispatched = 1
			AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id AND d.status = 'pending')
	`, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("cannot purge webhook events: %w", err)
	}
	return tag.RowsAffected(), nil
}
