package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store/internal/rowcodec"
)

// Page sizes of ListInboundMessages.
const (
	// DefaultInboundLimit is the page size when the caller gives none.
	DefaultInboundLimit = rowcodec.DefaultInboundLimit
	// MaxInboundLimit is the largest page ListInboundMessages returns.
	MaxInboundLimit = rowcodec.MaxInboundLimit
)

// CreateInboundMessage stores a received SMS and sets m.ID, and m.ReceivedAt
// when it is zero. It counts the message on the modem's inbound counter when
// that modem is known. The sender may be empty: the network delivers what it
// was given, and an undecodable PDU has none. It returns a CodeInvalid error
// when m has no modem, or is undecodable without its raw PDU.
func (db *DB) CreateInboundMessage(ctx context.Context, m *simgate.InboundMessage) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot create inbound message: %w", err)
	}
	defer tx.Rollback()

	if err := createInboundMessage(ctx, tx, m); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot create inbound message: %w", err)
	}
	return nil
}

// ListInboundMessages returns up to limit received messages with an id above
// afterID, oldest first, so that a client pages by passing the last id it
// saw. A limit of 0 or less means DefaultInboundLimit; limits above
// MaxInboundLimit are lowered to it.
func (db *DB) ListInboundMessages(ctx context.Context, afterID int64, limit int) ([]*simgate.InboundMessage, error) {
	tx, err := db.beginReadTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot list inbound messages: %w", err)
	}
	defer tx.Rollback()
	return listInboundMessages(ctx, tx, afterID, limit)
}

func createInboundMessage(ctx context.Context, tx *tx, m *simgate.InboundMessage) error {
	if err := m.CheckInsert(); err != nil {
		return err
	}
	receivedAt := m.ReceivedAt
	if receivedAt.IsZero() {
		receivedAt = tx.now
	}
	mms, err := rowcodec.NullJSON(m.MMS)
	if err != nil {
		return fmt.Errorf("cannot create inbound message: %w", err)
	}
	raw, err := rowcodec.NullJSON(m.Raw)
	if err != nil {
		return fmt.Errorf("cannot create inbound message: %w", err)
	}
	var port any
	if m.Port != 0 {
		port = m.Port
	}
	var data any
	if m.Data != nil {
		data = m.Data
	}

	res, err := tx.ExecContext(ctx, `
		INSERT INTO inbound_messages (modem_id, from_number, text, scts, received_at,
			kind, status, parts, parts_total, port, data, mms, raw)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	`, m.ModemID, m.From, m.Text, millis(m.SCTS), receivedAt.UnixMilli(),
		string(m.Kind), string(m.Status), m.Parts, m.PartsTotal, port, data, mms, raw)
	if err != nil {
		return fmt.Errorf("cannot create inbound message: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("cannot create inbound message: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE modems SET inbound = inbound + 1 WHERE id = ?`, m.ModemID); err != nil {
		return fmt.Errorf("cannot count inbound message: %w", err)
	}

	m.ID, m.ReceivedAt = id, receivedAt.UTC().Truncate(time.Millisecond)
	return nil
}

func listInboundMessages(ctx context.Context, tx *tx, afterID int64, limit int) ([]*simgate.InboundMessage, error) {
	limit = rowcodec.InboundLimit(limit)

	rows, err := tx.QueryContext(ctx, `
		SELECT `+inboundColumns+`
		FROM inbound_messages
		WHERE id > ?
		ORDER BY id
		LIMIT ?
	`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list inbound messages: %w", err)
	}
	return scanInboundMessages(rows)
}

// inboundColumns are the columns scanInboundMessages reads, in its order.
const inboundColumns = `id, modem_id, from_number, text, scts, received_at,
	kind, status, parts, parts_total, port, data, mms, raw`

// scanInboundMessages reads the rows of a SELECT inboundColumns FROM
// inbound_messages, and closes them.
func scanInboundMessages(rows *sql.Rows) ([]*simgate.InboundMessage, error) {
	defer rows.Close()
	ms := []*simgate.InboundMessage{}
	for rows.Next() {
		var m simgate.InboundMessage
		var scts, port sql.NullInt64
		var mms, raw sql.NullString
		var receivedAt int64
		if err := rows.Scan(&m.ID, &m.ModemID, &m.From, &m.Text, &scts, &receivedAt,
			&m.Kind, &m.Status, &m.Parts, &m.PartsTotal, &port, &m.Data, &mms, &raw); err != nil {
			return nil, fmt.Errorf("cannot list inbound messages: %w", err)
		}
		m.SCTS = fromMillis(scts)
		m.ReceivedAt = time.UnixMilli(receivedAt).UTC()
		m.Port = int(port.Int64)
		if err := rowcodec.SetInboundJSON(&m, nullableString(mms), nullableString(raw)); err != nil {
			return nil, err
		}
		ms = append(ms, &m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list inbound messages: %w", err)
	}
	return ms, nil
}

// nullableString is the string of a nullable column; nil for NULL.
func nullableString(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}
