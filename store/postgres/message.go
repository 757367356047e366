package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
)

// The messages' reads and writes that both the message and the
// verification transactions make (simgate.MessageTx, and
// simgate.VerificationTx.CreateMessage and CancelQueuedMessages), as the
// SQLite store does them (store/message.go, store/messagetx.go).

// insertMessage stores m as it is given (simgate.MessageTx.InsertMessage):
// it sets its ID, times, parts and first event.
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
	var hash []byte
	if m.IdempotencyKey != "" {
		hash = requestHash
	}
	// The message, its parts and its event go to the server in one round
	// trip (a batch), as each is only written.
	b := &pgx.Batch{}
	b.Queue(`
		INSERT INTO messages (id, to_number, text, priority, status, reason, next_attempt_at, expires_at,
			verification_id, api_key_id, idempotency_key, request_hash, created_at, updated_at, send_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
	`, m.ID, m.To, m.Text, int(m.Priority), string(m.Status), m.Reason, nextAttempt, millis(m.ExpiresAt),
		nullIfEmpty(m.VerificationID), nullIfEmpty(m.APIKeyID), nullIfEmpty(m.IdempotencyKey), hash,
		tx.now.UnixMilli(), tx.now.UnixMilli(), millis(m.SendAt))
	for i, p := range m.Parts {
		m.Parts[i] = simgate.Part{MessageID: m.ID, Seq: i + 1, Status: p.Status, MR: -1, ReportStatus: -1}
		b.Queue(`INSERT INTO message_parts (message_id, seq, status) VALUES ($1, $2, $3)`, m.ID, i+1, string(p.Status))
	}
	b.Queue(insertEvent, m.ID, tx.now.UnixMilli(), string(m.Status), m.Reason)
	br := tx.SendBatch(ctx, b)
	for range b.Len() {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("cannot create message: %w", err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("cannot create message: %w", err)
	}
	m.Events = []simgate.MessageEvent{{MessageID: m.ID, At: tx.now, Status: m.Status, Reason: m.Reason}}
	// A request holding an Idempotency-Key: its retry after a crash must
	// find this message.
	return linkIdempotencyKey(ctx, tx, m.ID)
}

// linkIdempotencyKey records message id with the reservation ctx carries
// (simgate.WithIdempotencyKey), in the transaction that creates the
// message: the reservation and what its request created are committed
// together, never apart.
func linkIdempotencyKey(ctx context.Context, tx *tx, id string) error {
	apiKeyID, key, ok := simgate.IdempotencyKeyFrom(ctx)
	if !ok {
		return nil
	}
	if _, err := tx.Exec(ctx, `
		UPDATE idempotency_keys SET message_id = $1 WHERE api_key_id = $2 AND key = $3 AND status_code IS NULL
	`, id, apiKeyID, key); err != nil {
		return fmt.Errorf("cannot record message with idempotency key: %w", err)
	}
	return nil
}

// FindMessage returns the message with its parts and its events, oldest
// first, read from one snapshot. It returns simgate.CodeNotFound for an
// unknown id.
func (db *DB) FindMessage(ctx context.Context, id string) (*simgate.Message, error) {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("cannot find message: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // it only read
	m, err := findMessage(ctx, tx, id)
	return m, unavailable(err)
}

const messageColumns = `id, to_number, text, priority, status, reason, attempts, next_attempt_at, expires_at,
	modem_id, verification_id, api_key_id, idempotency_key, created_at, updated_at, send_at`

func scanMessage(sc pgx.Row) (*simgate.Message, error) {
	var (
		m                             simgate.Message
		priority                      int
		status                        string
		next, createdAt, updatedAt    int64
		expires, sendAt               *int64
		modemID, vid, apiKey, idemKey *string
	)
	if err := sc.Scan(&m.ID, &m.To, &m.Text, &priority, &status, &m.Reason, &m.Attempts, &next, &expires,
		&modemID, &vid, &apiKey, &idemKey, &createdAt, &updatedAt, &sendAt); err != nil {
		return nil, err
	}
	m.Priority, m.Status = simgate.Priority(priority), simgate.MessageStatus(status)
	if next > 0 {
		m.NextAttemptAt = time.UnixMilli(next).UTC()
	}
	m.ExpiresAt, m.SendAt = fromMillis(expires), fromMillis(sendAt)
	m.ModemID, m.VerificationID, m.APIKeyID, m.IdempotencyKey = deref(modemID), deref(vid), deref(apiKey), deref(idemKey)
	m.CreatedAt, m.UpdatedAt = time.UnixMilli(createdAt).UTC(), time.UnixMilli(updatedAt).UTC()
	return &m, nil
}

func findMessage(ctx context.Context, q querier, id string) (*simgate.Message, error) {
	m, err := scanMessage(q.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("message", id)
	} else if err != nil {
		return nil, fmt.Errorf("cannot find message: %w", err)
	}

	rows, err := q.Query(ctx, `
		SELECT seq, status, modem_id, mr, submitted_at, report_status, done_at
		FROM message_parts WHERE message_id = $1 ORDER BY seq
	`, id)
	if err != nil {
		return nil, fmt.Errorf("cannot find message parts: %w", err)
	}
	if m.Parts, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (simgate.Part, error) {
		p := simgate.Part{MessageID: id}
		var status string
		var modemID *string
		var submitted, done *int64
		if err := row.Scan(&p.Seq, &status, &modemID, &p.MR, &submitted, &p.ReportStatus, &done); err != nil {
			return p, err
		}
		p.Status, p.ModemID, p.SubmittedAt, p.DoneAt = simgate.MessageStatus(status), deref(modemID), fromMillis(submitted), fromMillis(done)
		return p, nil
	}); err != nil {
		return nil, fmt.Errorf("cannot find message parts: %w", err)
	}

	rows, err = q.Query(ctx, `
		SELECT at, status, reason FROM message_events WHERE message_id = $1 ORDER BY id
	`, id)
	if err != nil {
		return nil, fmt.Errorf("cannot find message events: %w", err)
	}
	if m.Events, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (simgate.MessageEvent, error) {
		e := simgate.MessageEvent{MessageID: id}
		var at int64
		var status string
		if err := row.Scan(&at, &status, &e.Reason); err != nil {
			return e, err
		}
		e.At, e.Status = time.UnixMilli(at).UTC(), simgate.MessageStatus(status)
		return e, nil
	}); err != nil {
		return nil, fmt.Errorf("cannot find message events: %w", err)
	}
	return m, nil
}

// setMessageStatus gives message id status and reason.
func setMessageStatus(ctx context.Context, tx *tx, id string, status simgate.MessageStatus, reason string) error {
	if _, err := tx.Exec(ctx, `
		UPDATE messages SET status = $1, reason = $2, updated_at = $3 WHERE id = $4
	`, string(status), reason, tx.now.UnixMilli(), id); err != nil {
		return fmt.Errorf("cannot update message: %w", err)
	}
	return nil
}

// setPartsStatus gives parts from through to (to 0: the last) of message id
// status, modemID unless it is "", and doneAt (NULL when zero).
func setPartsStatus(ctx context.Context, tx *tx, id string, from, to int, status simgate.MessageStatus, modemID string, doneAt time.Time) error {
	if _, err := tx.Exec(ctx, `
		UPDATE message_parts SET status = $1, modem_id = coalesce(nullif($2, ''), modem_id), done_at = $3
		WHERE message_id = $4 AND seq >= $5 AND ($6 = 0 OR seq <= $6)
	`, string(status), modemID, millis(doneAt), id, from, to); err != nil {
		return fmt.Errorf("cannot update message parts: %w", err)
	}
	return nil
}

// addEvent records that message id moved to status, now, for reason.
func addEvent(ctx context.Context, tx *tx, id string, status simgate.MessageStatus, reason string) error {
	if _, err := tx.Exec(ctx, insertEvent, id, tx.now.UnixMilli(), string(status), reason); err != nil {
		return fmt.Errorf("cannot record message event: %w", err)
	}
	return nil
}

// insertEvent adds an event to a message.
const insertEvent = `INSERT INTO message_events (message_id, at, status, reason) VALUES ($1, $2, $3, $4)`

// deref is the string of a nullable text column; "" for NULL.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
