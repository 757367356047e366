package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store/internal/rowcodec"
)

// Page sizes of ListMessages.
const (
	// DefaultMessageLimit is the page size when the filter gives none.
	DefaultMessageLimit = rowcodec.DefaultMessageLimit
	// MaxMessageLimit is the largest page ListMessages returns.
	MaxMessageLimit = rowcodec.MaxMessageLimit
)

// insertMessage stores m as it is given (simgate.MessageTx.InsertMessage).
func insertMessage(ctx context.Context, tx *tx, m *simgate.Message, requestHash []byte) error {
	if err := m.CheckInsert(); err != nil {
		return err
	}
	m.ID = simgate.NewID("msg", tx.now)
	m.CreatedAt, m.UpdatedAt = tx.now, tx.now
	var nextAttempt int64
	if !m.NextAttemptAt.IsZero() {
		nextAttempt = m.NextAttemptAt.UnixMilli()
	}
	var hash any
	if m.IdempotencyKey != "" {
		hash = requestHash
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO messages (id, to_number, text, priority, status, reason, next_attempt_at, expires_at,
			verification_id, api_key_id, idempotency_key, request_hash, created_at, updated_at, send_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	`, m.ID, m.To, m.Text, int(m.Priority), m.Status, m.Reason, nextAttempt, millis(m.ExpiresAt),
		nullIfEmpty(m.VerificationID), nullIfEmpty(m.APIKeyID), nullIfEmpty(m.IdempotencyKey), hash,
		tx.now.UnixMilli(), tx.now.UnixMilli(), millis(m.SendAt)); err != nil {
		return fmt.Errorf("cannot create message: %w", err)
	}
	for i, p := range m.Parts {
		m.Parts[i] = simgate.Part{MessageID: m.ID, Seq: i + 1, Status: p.Status, MR: -1, ReportStatus: -1}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO message_parts (message_id, seq, status) VALUES (?, ?, ?)
		`, m.ID, i+1, p.Status); err != nil {
			return fmt.Errorf("cannot create message part: %w", err)
		}
	}
	if err := addEvent(ctx, tx, m.ID, m.Status, m.Reason); err != nil {
		return err
	}
	m.Events = []simgate.MessageEvent{{MessageID: m.ID, At: tx.now, Status: m.Status, Reason: m.Reason}}
	// A request holding an Idempotency-Key: its retry after a crash must
	// find this message (ReserveIdempotencyKey).
	return linkIdempotencyKey(ctx, tx, m.ID)
}

// CountDue returns how many queued messages are due now.
func (db *DB) CountDue(ctx context.Context) (int, error) {
	var n int
	if err := db.reader.QueryRowContext(ctx, `
		SELECT count(*) FROM messages WHERE status = 'queued' AND next_attempt_at <= ?
	`, db.now().UnixMilli()).Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot count due messages: %w", err)
	}
	return n, nil
}

// FindMessage returns the message with its parts and its events, oldest
// first. It returns simgate.CodeNotFound for an unknown id.
func (db *DB) FindMessage(ctx context.Context, id string) (*simgate.Message, error) {
	tx, err := db.beginReadTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot find message: %w", err)
	}
	defer tx.Rollback()
	return findMessage(ctx, tx, id)
}

const messageColumns = `id, to_number, text, priority, status, reason, attempts, next_attempt_at, expires_at,
	modem_id, verification_id, api_key_id, idempotency_key, created_at, updated_at, send_at`

func scanMessage(sc interface{ Scan(...any) error }) (*simgate.Message, error) {
	var (
		m                             simgate.Message
		priority                      int
		next, createdAt, updatedAt    int64
		expires, sendAt               sql.NullInt64
		modemID, vid, apiKey, idemKey sql.NullString
	)
	if err := sc.Scan(&m.ID, &m.To, &m.Text, &priority, &m.Status, &m.Reason, &m.Attempts, &next, &expires,
		&modemID, &vid, &apiKey, &idemKey, &createdAt, &updatedAt, &sendAt); err != nil {
		return nil, err
	}
	m.Priority = simgate.Priority(priority)
	if next > 0 {
		m.NextAttemptAt = time.UnixMilli(next).UTC()
	}
	m.ExpiresAt, m.SendAt = fromMillis(expires), fromMillis(sendAt)
	m.ModemID, m.VerificationID, m.APIKeyID, m.IdempotencyKey = modemID.String, vid.String, apiKey.String, idemKey.String
	m.CreatedAt, m.UpdatedAt = time.UnixMilli(createdAt).UTC(), time.UnixMilli(updatedAt).UTC()
	return &m, nil
}

func findMessage(ctx context.Context, tx *tx, id string) (*simgate.Message, error) {
	m, err := scanMessage(tx.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("message", id)
	} else if err != nil {
		return nil, fmt.Errorf("cannot find message: %w", err)
	}

	rows, err := tx.QueryContext(ctx, `
		SELECT seq, status, modem_id, mr, submitted_at, report_status, done_at
		FROM message_parts WHERE message_id = ? ORDER BY seq
	`, id)
	if err != nil {
		return nil, fmt.Errorf("cannot find message parts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		p := simgate.Part{MessageID: id}
		var modemID sql.NullString
		var submitted, done sql.NullInt64
		if err := rows.Scan(&p.Seq, &p.Status, &modemID, &p.MR, &submitted, &p.ReportStatus, &done); err != nil {
			return nil, fmt.Errorf("cannot find message parts: %w", err)
		}
		p.ModemID, p.SubmittedAt, p.DoneAt = modemID.String, fromMillis(submitted), fromMillis(done)
		m.Parts = append(m.Parts, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot find message parts: %w", err)
	}

	evs, err := tx.QueryContext(ctx, `
		SELECT at, status, reason FROM message_events WHERE message_id = ? ORDER BY id
	`, id)
	if err != nil {
		return nil, fmt.Errorf("cannot find message events: %w", err)
	}
	defer evs.Close()
	for evs.Next() {
		e := simgate.MessageEvent{MessageID: id}
		var at int64
		if err := evs.Scan(&at, &e.Status, &e.Reason); err != nil {
			return nil, fmt.Errorf("cannot find message events: %w", err)
		}
		e.At = time.UnixMilli(at).UTC()
		m.Events = append(m.Events, e)
	}
	if err := evs.Err(); err != nil {
		return nil, fmt.Errorf("cannot find message events: %w", err)
	}
	return m, nil
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
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.To != "" {
		where, args = append(where, "to_number = ?"), append(args, f.To)
	}
	if f.VerificationID != "" {
		where, args = append(where, "verification_id = ?"), append(args, f.VerificationID)
	}
	if f.Cursor != "" {
		at, id, err := rowcodec.ParseCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where, args = append(where, "(created_at < ? OR (created_at = ? AND id < ?))"), append(args, at, at, id)
	}
	q := `SELECT ` + messageColumns + ` FROM messages`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit+1)

	rows, err := db.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("cannot list messages: %w", err)
	}
	defer rows.Close()
	ms := []*simgate.Message{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, "", fmt.Errorf("cannot list messages: %w", err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("cannot list messages: %w", err)
	}
	next := ""
	if len(ms) > limit {
		ms = ms[:limit]
		last := ms[limit-1]
		next = rowcodec.Cursor(last.CreatedAt.UnixMilli(), last.ID)
	}
	return ms, next, nil
}

func addEvent(ctx context.Context, tx *tx, id string, status simgate.MessageStatus, reason string) error {
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO message_events (message_id, at, status, reason) VALUES (?, ?, ?, ?)
	`, id, tx.now.UnixMilli(), status, reason); err != nil {
		return fmt.Errorf("cannot record message event: %w", err)
	}
	return nil
}

func scanIDs(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// nullIfEmpty returns nil for "", so that "not set" is NULL.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
