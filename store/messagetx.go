package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/simgate/simgate"
)

// UpdateMessages runs fn in one write transaction, which it commits when fn
// returns nil and rolls back otherwise. The queue holds the rules of the
// message state machine; fn does its reads and writes through the
// simgate.MessageTx it is given, which must not be used after fn returns.
// fn must not block on anything but the transaction.
func (db *DB) UpdateMessages(ctx context.Context, fn func(simgate.MessageTx) error) error {
	return db.update(ctx, "message", func(tx *tx) error { return fn(messageTx{tx}) })
}

// update runs fn in one write transaction, committed when fn returns nil:
// the transactions of UpdateMessages and UpdateVerifications. what names
// them in errors.
func (db *DB) update(ctx context.Context, what string, fn func(*tx) error) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot begin %s transaction: %w", what, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot commit %s transaction: %w", what, err)
	}
	return nil
}

// messageTx is the simgate.MessageTx of a write transaction. Its methods
// on status reports and late submit answers are in report.go, those on
// scheduled messages in schedule.go.
type messageTx struct{ tx *tx }

func (t messageTx) Now() time.Time { return t.tx.now }

func (t messageTx) FindMessage(ctx context.Context, id string) (*simgate.Message, error) {
	return findMessage(ctx, t.tx, id)
}

func (t messageTx) MessageState(ctx context.Context, id string) (*simgate.MessageState, error) {
	// One row, so that the writer's prepared statement serves it.
	var parts string
	var updatedAt int64
	s := simgate.MessageState{ID: id}
	err := t.tx.QueryRowContext(ctx, `
		SELECT status, to_number, updated_at,
			(SELECT coalesce(group_concat(status, ',' ORDER BY seq), '') FROM message_parts WHERE message_id = messages.id)
		FROM messages WHERE id = ?
	`, id).Scan(&s.Status, &s.To, &updatedAt, &parts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("message", id)
	} else if err != nil {
		return nil, fmt.Errorf("cannot read message: %w", err)
	}
	s.UpdatedAt = time.UnixMilli(updatedAt).UTC()
	if parts != "" {
		for p := range strings.SplitSeq(parts, ",") {
			s.Parts = append(s.Parts, simgate.MessageStatus(p))
		}
	}
	return &s, nil
}

func (t messageTx) IdempotentMessage(ctx context.Context, apiKeyID, key string) (string, []byte, error) {
	var id string
	var hash []byte
	err := t.tx.QueryRowContext(ctx, `
		SELECT id, request_hash FROM messages WHERE api_key_id IS ? AND idempotency_key = ?
	`, nullIfEmpty(apiKeyID), key).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, notFound("idempotency key", key)
	} else if err != nil {
		return "", nil, fmt.Errorf("cannot look up idempotency key: %w", err)
	}
	return id, hash, nil
}

func (t messageTx) OptOut(ctx context.Context, number string) (string, bool, error) {
	return optedOut(ctx, t.tx, number)
}

func (t messageTx) InsertMessage(ctx context.Context, m *simgate.Message, requestHash []byte) error {
	return insertMessage(ctx, t.tx, m, requestHash)
}

// unsentColumns are the columns scanUnsent reads, in its order, from
// messages m joined with their verifications v.
const unsentColumns = `m.id, m.to_number, m.text, m.priority, m.status, m.attempts, m.send_at, m.expires_at,
	m.verification_id, m.created_at, v.status, v.expires_at, m.waiting_for_modem, ` + stickyModem

// stickyModem is the modem that sent the newest earlier message of m's
// verification (simgate.UnsentMessage.StickyModem), by the
// messages_verification index.
const stickyModem = `(SELECT p.modem_id FROM messages p
	WHERE p.verification_id = m.verification_id AND p.id <> m.id AND p.modem_id IS NOT NULL
	ORDER BY p.rowid DESC LIMIT 1)`

// unsentFrom is the FROM clause of unsentColumns.
const unsentFrom = `messages m LEFT JOIN verifications v ON v.id = m.verification_id`

func scanUnsent(sc interface{ Scan(...any) error }) (*simgate.UnsentMessage, error) {
	var (
		u                           simgate.UnsentMessage
		priority                    int
		createdAt                   int64
		sendAt, expiresAt, vExpires sql.NullInt64
		vid, vstatus, waiting       sql.NullString
		sticky                      sql.NullString
	)
	if err := sc.Scan(&u.ID, &u.To, &u.Text, &priority, &u.Status, &u.Attempts, &sendAt, &expiresAt,
		&vid, &createdAt, &vstatus, &vExpires, &waiting, &sticky); err != nil {
		return nil, err
	}
	u.Priority = simgate.Priority(priority)
	u.SendAt, u.ExpiresAt = fromMillis(sendAt), fromMillis(expiresAt)
	u.VerificationID = vid.String
	u.CreatedAt = time.UnixMilli(createdAt).UTC()
	u.VerificationStatus = simgate.VerificationStatus(vstatus.String)
	u.VerificationExpiresAt = fromMillis(vExpires)
	u.WaitingForModem = waiting.String
	u.StickyModem = sticky.String
	return &u, nil
}

// queryUnsent returns the unsent messages a query of unsentColumns finds.
func queryUnsent(ctx context.Context, tx *tx, what, query string, args ...any) ([]*simgate.UnsentMessage, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot find %s: %w", what, err)
	}
	defer rows.Close()
	var us []*simgate.UnsentMessage
	for rows.Next() {
		u, err := scanUnsent(rows)
		if err != nil {
			return nil, fmt.Errorf("cannot find %s: %w", what, err)
		}
		us = append(us, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot find %s: %w", what, err)
	}
	return us, nil
}

func (t messageTx) NextDueMessage(ctx context.Context, elsewhere []string) (*simgate.UnsentMessage, error) {
	args := []any{t.tx.now.UnixMilli()}
	skip := ""
	if len(elsewhere) > 0 {
		skip = ` AND (m.verification_id IS NULL OR coalesce(` + stickyModem + `, '') NOT IN (?` +
			strings.Repeat(", ?", len(elsewhere)-1) + `))`
		for _, e := range elsewhere {
			args = append(args, e)
		}
	}
	u, err := scanUnsent(t.tx.QueryRowContext(ctx, `
		SELECT `+unsentColumns+` FROM `+unsentFrom+`
		WHERE m.status = 'queued' AND m.next_attempt_at <= ?`+skip+`
		ORDER BY m.priority DESC, m.next_attempt_at, m.created_at
		LIMIT 1
	`, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("cannot find the next due message: %w", err)
	}
	return u, nil
}

func (t messageTx) ExpiredUnsentMessages(ctx context.Context) ([]*simgate.UnsentMessage, error) {
	now := t.tx.now.UnixMilli()
	return queryUnsent(ctx, t.tx, "expired messages", `
		SELECT `+unsentColumns+` FROM `+unsentFrom+`
		WHERE m.status IN ('scheduled', 'accepted', 'queued')
			AND (m.expires_at <= ? OR (m.verification_id IS NOT NULL AND (v.status IS NOT 'pending' OR v.expires_at <= ?)))
	`, now, now)
}

func (t messageTx) LeasedMessages(ctx context.Context, owner string) ([]string, error) {
	rows, err := t.tx.QueryContext(ctx, `
		SELECT id FROM messages
		WHERE status = 'sending' AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires_at <= ?)
	`, owner, t.tx.now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("cannot find leased messages: %w", err)
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return nil, fmt.Errorf("cannot find leased messages: %w", err)
	}
	return ids, nil
}

func (t messageTx) RenewLeases(ctx context.Context, owner string, until time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, `
		UPDATE messages SET lease_expires_at = ?
		WHERE status = 'sending' AND lease_owner = ? AND lease_expires_at < ?
	`, until.UnixMilli(), owner, until.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("cannot renew leases: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("cannot renew leases: %w", err)
	}
	return int(n), nil
}

func (t messageTx) StartAttempt(ctx context.Context, id, reason, owner string, until time.Time) error {
	if _, err := t.tx.ExecContext(ctx, `
		UPDATE messages SET status = 'sending', reason = ?, attempts = attempts + 1,
			lease_owner = ?, lease_expires_at = ?, updated_at = ?
		WHERE id = ?
	`, reason, owner, until.UnixMilli(), t.tx.now.UnixMilli(), id); err != nil {
		return fmt.Errorf("cannot start attempt: %w", err)
	}
	if _, err := t.tx.ExecContext(ctx, `
		UPDATE message_parts SET status = 'sending', attempts = attempts + 1
		WHERE message_id = ? AND status = 'queued'
	`, id); err != nil {
		return fmt.Errorf("cannot start attempt: %w", err)
	}
	return nil
}

func (t messageTx) UndoAttempt(ctx context.Context, id string) error {
	if _, err := t.tx.ExecContext(ctx, `
		UPDATE message_parts SET status = 'queued', attempts = max(attempts - 1, 0), done_at = NULL
		WHERE message_id = ? AND status IN ('sending', 'unknown') AND mr = -1
	`, id); err != nil {
		return fmt.Errorf("cannot undo attempt: %w", err)
	}
	if _, err := t.tx.ExecContext(ctx, `
		UPDATE messages SET status = 'queued', attempts = max(attempts - 1, 0),
			lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
		WHERE id = ?
	`, t.tx.now.UnixMilli(), id); err != nil {
		return fmt.Errorf("cannot undo attempt: %w", err)
	}
	return nil
}

func (t messageTx) EndAttempt(ctx context.Context, id string, status simgate.MessageStatus, reason, modemID string, due time.Time) error {
	if _, err := t.tx.ExecContext(ctx, `
		UPDATE messages SET status = ?, reason = ?, modem_id = coalesce(nullif(?, ''), modem_id),
			next_attempt_at = coalesce(?, next_attempt_at),
			waiting_for_modem = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
		WHERE id = ?
	`, status, reason, modemID, millis(due), t.tx.now.UnixMilli(), id); err != nil {
		return fmt.Errorf("cannot end attempt: %w", err)
	}
	return nil
}

func (t messageTx) SetMessageStatus(ctx context.Context, id string, status simgate.MessageStatus, reason string) error {
	return setMessageStatus(ctx, t.tx, id, status, reason)
}

func (t messageTx) SetReportsMissing(ctx context.Context, id, reason string) error {
	now := t.tx.now.UnixMilli()
	if _, err := t.tx.ExecContext(ctx, `
		UPDATE messages SET reason = ?, reports_missing_at = ?, updated_at = ? WHERE id = ?
	`, reason, now, now, id); err != nil {
		return fmt.Errorf("cannot record missing reports: %w", err)
	}
	return nil
}

func (t messageTx) SentMessagesSubmittedBefore(ctx context.Context, before time.Time, limit int) ([]string, error) {
	cutoff := before.UnixMilli()
	// A message's updated_at is no earlier than its last submit: the index
	// on it narrows the search to messages that may qualify.
	rows, err := t.tx.QueryContext(ctx, `
		SELECT id FROM messages m
		WHERE status = 'sent' AND reports_missing_at IS NULL AND updated_at <= ?
			AND NOT EXISTS (SELECT 1 FROM message_parts p
				WHERE p.message_id = m.id AND p.status = 'sent' AND coalesce(p.submitted_at, 0) > ?)
		ORDER BY updated_at
		LIMIT ?
	`, cutoff, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot find sent messages: %w", err)
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return nil, fmt.Errorf("cannot find sent messages: %w", err)
	}
	return ids, nil
}

func (t messageTx) DelayDueMessages(ctx context.Context, until time.Time, reason string) error {
	now := t.tx.now.UnixMilli()
	if _, err := t.tx.ExecContext(ctx, `
		INSERT INTO message_events (message_id, at, status, reason)
		SELECT id, ?, 'queued', ? FROM messages
		WHERE status = 'queued' AND next_attempt_at <= ? AND waiting_for_modem IS NULL
	`, now, reason, now); err != nil {
		return fmt.Errorf("cannot record message event: %w", err)
	}
	if _, err := t.tx.ExecContext(ctx, `
		UPDATE messages SET waiting_for_modem = ?, reason = ?, next_attempt_at = ?, updated_at = ?
		WHERE status = 'queued' AND next_attempt_at <= ?
	`, reason, reason, until.UnixMilli(), now, now); err != nil {
		return fmt.Errorf("cannot make messages wait for a modem: %w", err)
	}
	return nil
}

func (t messageTx) WakeWaitingMessages(ctx context.Context) (int, error) {
	now := t.tx.now.UnixMilli()
	res, err := t.tx.ExecContext(ctx, `
		UPDATE messages SET next_attempt_at = ?
		WHERE status = 'queued' AND waiting_for_modem IS NOT NULL AND next_attempt_at > ?
	`, now, now)
	if err != nil {
		return 0, fmt.Errorf("cannot wake messages waiting for a modem: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("cannot wake messages waiting for a modem: %w", err)
	}
	return int(n), nil
}

func (t messageTx) AddMessageEvent(ctx context.Context, id string, status simgate.MessageStatus, reason string) error {
	return addEvent(ctx, t.tx, id, status, reason)
}

func (t messageTx) DeleteLastMessageEvent(ctx context.Context, id string, status simgate.MessageStatus) error {
	if _, err := t.tx.ExecContext(ctx, `
		DELETE FROM message_events
		WHERE id = (SELECT max(id) FROM message_events WHERE message_id = ?) AND status = ?
	`, id, status); err != nil {
		return fmt.Errorf("cannot delete message event: %w", err)
	}
	return nil
}

func (t messageTx) SetPartCount(ctx context.Context, id string, n int, status simgate.MessageStatus, attempts int) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM message_parts WHERE message_id = ? AND seq > ?`, id, n); err != nil {
		return fmt.Errorf("cannot change message parts: %w", err)
	}
	for seq := 1; seq <= n; seq++ {
		if _, err := t.tx.ExecContext(ctx, `
			INSERT INTO message_parts (message_id, seq, status, attempts) VALUES (?, ?, ?, ?)
			ON CONFLICT (message_id, seq) DO NOTHING
		`, id, seq, status, attempts); err != nil {
			return fmt.Errorf("cannot change message parts: %w", err)
		}
	}
	return nil
}

func (t messageTx) SetPartsStatus(ctx context.Context, id string, from, to int, status simgate.MessageStatus, modemID string, doneAt time.Time) error {
	return setPartsStatus(ctx, t.tx, id, from, to, status, modemID, doneAt)
}

func (t messageTx) SetPartSent(ctx context.Context, id string, seq int, modemID string, mr int, at time.Time) error {
	if _, err := t.tx.ExecContext(ctx, `
		UPDATE message_parts SET status = 'sent', modem_id = ?, mr = ?, submitted_at = ? WHERE message_id = ? AND seq = ?
	`, modemID, mr, at.UnixMilli(), id, seq); err != nil {
		return fmt.Errorf("cannot update message part: %w", err)
	}
	return nil
}

func (t messageTx) SetPartReport(ctx context.Context, id string, seq, tpst int, status simgate.MessageStatus, doneAt time.Time) error {
	if _, err := t.tx.ExecContext(ctx, `
		UPDATE message_parts SET status = coalesce(nullif(?, ''), status), report_status = ?, done_at = coalesce(?, done_at)
		WHERE message_id = ? AND seq = ?
	`, status, tpst, millis(doneAt), id, seq); err != nil {
		return fmt.Errorf("cannot record status report: %w", err)
	}
	return nil
}

func (t messageTx) AddUsage(ctx context.Context, modemID string, at time.Time, n int) error {
	return addUsage(ctx, t.tx, modemID, at, n)
}

func (t messageTx) FailPendingVerification(ctx context.Context, messageID string) error {
	if _, err := t.tx.ExecContext(ctx, `
		UPDATE verifications SET status = 'failed', code_hash = NULL, updated_at = ?
		WHERE id = (SELECT verification_id FROM messages WHERE id = ?) AND status = 'pending'
	`, t.tx.now.UnixMilli(), messageID); err != nil {
		return fmt.Errorf("cannot fail verification: %w", err)
	}
	return nil
}

// setMessageStatus gives message id status and reason.
func setMessageStatus(ctx context.Context, tx *tx, id string, status simgate.MessageStatus, reason string) error {
	if _, err := tx.ExecContext(ctx, `
		UPDATE messages SET status = ?, reason = ?, updated_at = ? WHERE id = ?
	`, status, reason, tx.now.UnixMilli(), id); err != nil {
		return fmt.Errorf("cannot update message: %w", err)
	}
	return nil
}

// setPartsStatus gives parts from through to (to 0: the last) of message id
// status, modemID unless it is "", and doneAt (NULL when zero).
func setPartsStatus(ctx context.Context, tx *tx, id string, from, to int, status simgate.MessageStatus, modemID string, doneAt time.Time) error {
	if _, err := tx.ExecContext(ctx, `
		UPDATE message_parts SET status = ?, modem_id = coalesce(nullif(?, ''), modem_id), done_at = ?
		WHERE message_id = ? AND seq >= ? AND (? = 0 OR seq <= ?)
	`, status, modemID, millis(doneAt), id, from, to, to); err != nil {
		return fmt.Errorf("cannot update message parts: %w", err)
	}
	return nil
}
