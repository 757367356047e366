package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store/internal/rowcodec"
)

// Received messages, opt-outs and the modems' daily usage, as the SQLite
// store keeps them (store/inbound.go, store/optout.go, store/usage.go).

// CreateInboundMessage stores a received SMS and sets m.ID, and m.ReceivedAt
// when it is zero. It counts the message on the modem's inbound counter when
// that modem is known. The sender may be empty: the network delivers what it
// was given, and an undecodable PDU has none. It returns a CodeInvalid error
// when m has no modem, or is undecodable without its raw PDU.
func (db *DB) CreateInboundMessage(ctx context.Context, m *simgate.InboundMessage) error {
	if err := m.CheckInsert(); err != nil {
		return err
	}
	mms, err := rowcodec.NullJSON(m.MMS)
	if err != nil {
		return fmt.Errorf("cannot create inbound message: %w", err)
	}
	raw, err := rowcodec.NullJSON(m.Raw)
	if err != nil {
		return fmt.Errorf("cannot create inbound message: %w", err)
	}
	var port *int
	if m.Port != 0 {
		port = &m.Port
	}
	return db.update(ctx, "inbound message", func(tx *tx) error {
		receivedAt := m.ReceivedAt
		if receivedAt.IsZero() {
			receivedAt = tx.now
		}
		var id int64
		if err := tx.QueryRow(ctx, `
			INSERT INTO inbound_messages (modem_id, from_number, text, scts, received_at,
				kind, status, parts, parts_total, port, data, mms, raw)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			RETURNING id
		`, m.ModemID, m.From, m.Text, millis(m.SCTS), receivedAt.UnixMilli(),
			string(m.Kind), string(m.Status), m.Parts, m.PartsTotal, port, m.Data, mms, raw).Scan(&id); err != nil {
			return fmt.Errorf("cannot create inbound message: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE modems SET inbound = inbound + 1 WHERE id = $1`, m.ModemID); err != nil {
			return fmt.Errorf("cannot count inbound message: %w", err)
		}
		m.ID, m.ReceivedAt = id, receivedAt.UTC().Truncate(time.Millisecond)
		return nil
	})
}

// ListInboundMessages returns up to limit received messages with an id above
// afterID, oldest first, so that a client pages by passing the last id it
// saw. A limit of 0 or less means 100; limits above 1000 are lowered to it.
func (db *DB) ListInboundMessages(ctx context.Context, afterID int64, limit int) ([]*simgate.InboundMessage, error) {
	return db.findInbound(ctx, `WHERE id > $1 ORDER BY id LIMIT $2`, afterID, rowcodec.InboundLimit(limit))
}

// RecentInboundMessages returns up to limit received SMS, newest first (a
// limit of 0 or less means 50), for the console.
func (db *DB) RecentInboundMessages(ctx context.Context, limit int) ([]*simgate.InboundMessage, error) {
	if limit <= 0 {
		limit = 50
	}
	return db.findInbound(ctx, `ORDER BY id DESC LIMIT $1`, rowcodec.InboundLimit(limit))
}

// findInbound returns the received messages that rest (a WHERE, ORDER BY
// and LIMIT clause with args) selects; never nil.
func (db *DB) findInbound(ctx context.Context, rest string, args ...any) ([]*simgate.InboundMessage, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT id, modem_id, from_number, text, scts, received_at, kind, status, parts, parts_total, port, data, mms, raw
		FROM inbound_messages `+rest, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot list inbound messages: %w", err)
	}
	ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*simgate.InboundMessage, error) {
		var m simgate.InboundMessage
		var scts, port *int64
		var kind, status string
		var mms, raw *string
		var receivedAt int64
		if err := row.Scan(&m.ID, &m.ModemID, &m.From, &m.Text, &scts, &receivedAt,
			&kind, &status, &m.Parts, &m.PartsTotal, &port, &m.Data, &mms, &raw); err != nil {
			return nil, err
		}
		m.Kind, m.Status = simgate.InboundKind(kind), simgate.InboundStatus(status)
		m.SCTS = fromMillis(scts)
		m.ReceivedAt = time.UnixMilli(receivedAt).UTC()
		if port != nil {
			m.Port = int(*port)
		}
		return &m, rowcodec.SetInboundJSON(&m, mms, raw)
	})
	if err != nil {
		return nil, fmt.Errorf("cannot list inbound messages: %w", err)
	}
	if ms == nil {
		ms = []*simgate.InboundMessage{}
	}
	return ms, nil
}

// SetOptOut records that number (E.164) opted out with keyword when out is
// true, and removes its opt-out otherwise. Both are idempotent, so that an
// inbound SMS handled twice changes nothing the second time.
func (db *DB) SetOptOut(ctx context.Context, number, keyword string, out bool) error {
	if number == "" {
		return simgate.Errorf(simgate.CodeInvalid, "opt-out has no number")
	}
	var err error
	if out {
		_, err = db.pool.Exec(ctx, `
			INSERT INTO opt_outs (number, keyword, at) VALUES ($1, $2, $3)
			ON CONFLICT (number) DO UPDATE SET keyword = excluded.keyword, at = excluded.at
		`, number, keyword, db.txNow().UnixMilli())
	} else {
		_, err = db.pool.Exec(ctx, `DELETE FROM opt_outs WHERE number = $1`, number)
	}
	if err != nil {
		return fmt.Errorf("cannot record opt-out: %w", err)
	}
	return nil
}

// OptedOut reports whether number opted out, and with which keyword.
func (db *DB) OptedOut(ctx context.Context, number string) (keyword string, ok bool, err error) {
	return optedOut(ctx, db.pool, number)
}

// optedOut reads the opt-out of number through q: the pool, or a
// transaction.
func optedOut(ctx context.Context, q querier, number string) (keyword string, ok bool, err error) {
	err = q.QueryRow(ctx, `SELECT keyword FROM opt_outs WHERE number = $1`, number).Scan(&keyword)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	} else if err != nil {
		return "", false, fmt.Errorf("cannot look up opt-out: %w", err)
	}
	return keyword, true, nil
}

// LoadUsage returns the SMS counted for modemID on the UTC day day
// ("2006-01-02"), 0 when none: the parts the queue recorded as sent by it,
// or maybe sent (simgate.MessageTx.AddUsage). It makes DB a modem.UsageStore.
func (db *DB) LoadUsage(ctx context.Context, modemID, day string) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `
		SELECT sent FROM modem_daily_usage WHERE modem_id = $1 AND day = $2
	`, modemID, day).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("cannot load daily usage: %w", err)
	}
	return n, nil
}
