package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/simgate/simgate"
)

// CreateInboundCall records a call to a modem and sets c.ID, and c.At when it
// is zero; a call.received webhook event goes with it. It returns a
// CodeInvalid error when c has no modem.
func (db *DB) CreateInboundCall(ctx context.Context, c *simgate.InboundCall) error {
	if c.ModemID == "" {
		return simgate.Errorf(simgate.CodeInvalid, "inbound call has no modem")
	}
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot record inbound call: %w", err)
	}
	defer tx.Rollback()
	if c.At.IsZero() {
		c.At = tx.now
	}
	rejected := 0
	if c.Rejected {
		rejected = 1
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO inbound_calls (modem_id, from_number, at, rejected) VALUES (?, ?, ?, ?)`,
		c.ModemID, c.From, c.At.UnixMilli(), rejected)
	if err != nil {
		return fmt.Errorf("cannot record inbound call: %w", err)
	}
	if c.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("cannot record inbound call: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot record inbound call: %w", err)
	}
	c.At = c.At.UTC().Truncate(time.Millisecond)
	return nil
}

// RecentInboundCalls returns the calls since since, newest first, at most
// limit.
func (db *DB) RecentInboundCalls(ctx context.Context, since time.Time, limit int) ([]*simgate.InboundCall, error) {
	rows, err := db.reader.QueryContext(ctx, `
		SELECT id, modem_id, from_number, at, rejected FROM inbound_calls
		WHERE at >= ? ORDER BY id DESC LIMIT ?`, since.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list inbound calls: %w", err)
	}
	defer rows.Close()
	var out []*simgate.InboundCall
	for rows.Next() {
		var c simgate.InboundCall
		var at int64
		var rejected int
		if err := rows.Scan(&c.ID, &c.ModemID, &c.From, &at, &rejected); err != nil {
			return nil, fmt.Errorf("cannot list inbound calls: %w", err)
		}
		c.At, c.Rejected = time.UnixMilli(at).UTC(), rejected == 1
		out = append(out, &c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list inbound calls: %w", err)
	}
	return out, nil
}

// RecordBalanceLow writes the modem.balance_low webhook event with data,
// when an endpoint subscribes to it, and reports whether it did.
func (db *DB) RecordBalanceLow(ctx context.Context, data any) (bool, error) {
	payload, err := json.Marshal(data)
	if err != nil {
		return false, fmt.Errorf("cannot record low balance: %w", err)
	}
	n, err := db.execAlone(ctx, "record low balance", func(tx *tx) (sql.Result, error) {
		return tx.ExecContext(ctx, `
			INSERT INTO webhook_events (id, type, payload, created_at)
			SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM webhook_subscriptions WHERE type = ?)
		`, simgate.NewID("evt", tx.now), simgate.EventModemBalanceLow, string(payload), tx.now.UnixMilli(), simgate.EventModemBalanceLow)
	})
	return n > 0, err
}
