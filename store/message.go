package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/simgate/simgate"
)

// Page sizes of ListMessages.
const (
	// DefaultMessageLimit is the page size when the filter gives none.
	DefaultMessageLimit = 100
	// MaxMessageLimit is the largest page ListMessages returns.
	MaxMessageLimit = 1000
)

// CreateMessage stores m as queued, with one queued part per entry of m.Parts
// (at least one), and records the transition. It sets m.ID, m.Status and the
// times. A message whose SendAt is still ahead is stored as scheduled
// instead, and due at its SendAt (see ReleaseScheduled); SendAt is rounded
// up to the millisecond, the precision of the database, so that it is never
// sent early.
//
// When m.IdempotencyKey is set and the same API key already used it, nothing
// is stored: if requestHash equals the stored one, *m is replaced by the
// existing message and created is false; otherwise the error has
// simgate.CodeConflict. A message without a verification to a number that
// opted out fails with simgate.CodeForbidden. The checks and the insert share
// one transaction. When ctx carries the reservation of an Idempotency-Key
// (simgate.WithIdempotencyKey), a created message is recorded with it in
// that transaction too. The rules are createMessage's (rules.go).
func (db *DB) CreateMessage(ctx context.Context, m *simgate.Message, requestHash []byte) (created bool, err error) {
	err = db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		var err error
		created, err = createMessage(ctx, tx, m, requestHash)
		return err
	})
	return created, err
}

// ClaimMessage takes the next message that is due, highest priority first,
// and commits it as sending under a lease held by owner, before any modem is
// asked: a crash after this point leaves it in sending, never resent blindly.
// In the same transaction it finishes, without sending them, queued messages
// that may no longer go out: past their expiry, or belonging to a
// verification that expired or is no longer pending. It returns nil when no
// message is due. The claimed message's ExpiresAt is when it stops being
// worth sending: the earlier of its own expiry and, for a verification's SMS,
// the verification's (for simgate.SendRequest.NotAfter). The rules are
// claimMessage's (rules.go).
func (db *DB) ClaimMessage(ctx context.Context, owner string, lease time.Duration) (*simgate.Message, error) {
	return db.FinishAndClaim(ctx, "", simgate.SendOutcome{}, owner, lease)
}

// FinishAndClaim records the outcome of the send of message id, as
// FinishSend, and claims the next message, as ClaimMessage, in one
// transaction: a dispatcher worker between two submits pays for one commit.
// An empty id records nothing.
func (db *DB) FinishAndClaim(ctx context.Context, id string, o simgate.SendOutcome, owner string, lease time.Duration) (*simgate.Message, error) {
	var m *simgate.Message
	if err := db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		if id != "" {
			if err := finishSend(ctx, tx, id, o); err != nil {
				return err
			}
		}
		var err error
		m, err = claimMessage(ctx, tx, owner, lease)
		return err
	}); err != nil {
		return nil, err
	}
	return m, nil
}

// FinishSend records the outcome of a submit of message id (see
// simgate.SendOutcome) and releases its lease. It applies to a message in
// sending, or in unknown when a sweep gave up on it meanwhile; for any other
// status it does nothing. The parts o.ModemID sent, or may have sent, count
// in its daily usage (LoadUsage). When the message ends failed, a pending
// verification it belongs to becomes failed too. An o.NoModem outcome was
// no attempt: see waitForModem. The rules are finishSend's (rules.go).
func (db *DB) FinishSend(ctx context.Context, id string, o simgate.SendOutcome) error {
	return db.UpdateMessages(ctx, func(tx simgate.MessageTx) error { return finishSend(ctx, tx, id, o) })
}

// WakeWaiting makes the queued messages that wait for a modem due now, for
// when a modem became ready, and returns how many it changed.
func (db *DB) WakeWaiting(ctx context.Context) (int, error) {
	return db.countMessages(ctx, func(ctx context.Context, tx simgate.MessageTx) (int, error) {
		return tx.WakeWaitingMessages(ctx)
	})
}

// RecoverSending deals with messages left in sending by a dispatcher that
// died while asking a modem: those whose lease belongs to owner, has no
// owner, or has expired. The modem may have sent them, so they become unknown,
// or queued again when resend is true. An empty owner takes only expired
// leases. It returns how many messages it changed. The rules are
// recoverSending's (rules.go).
func (db *DB) RecoverSending(ctx context.Context, owner string, resend bool) (int, error) {
	return db.countMessages(ctx, func(ctx context.Context, tx simgate.MessageTx) (int, error) {
		return recoverSending(ctx, tx, owner, resend)
	})
}

// ExpireMessages finishes queued messages that may no longer be sent (see
// ClaimMessage) and returns how many it finished.
func (db *DB) ExpireMessages(ctx context.Context) (int, error) {
	return db.countMessages(ctx, expireMessages)
}

// CancelMessage cancels a message that no modem was asked to send yet
// (scheduled, accepted or queued). It returns simgate.CodeNotFound for an unknown id and
// simgate.CodeConflict for a message past that point.
func (db *DB) CancelMessage(ctx context.Context, id, reason string) error {
	return db.UpdateMessages(ctx, func(tx simgate.MessageTx) error { return cancelMessage(ctx, tx, id, reason) })
}

// countMessages runs fn, which counts, in one message transaction and
// returns its count once committed.
func (db *DB) countMessages(ctx context.Context, fn func(context.Context, simgate.MessageTx) (int, error)) (int, error) {
	var n int
	if err := db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		var err error
		n, err = fn(ctx, tx)
		return err
	}); err != nil {
		return 0, err
	}
	return n, nil
}

// insertMessage stores m as it is given (simgate.MessageTx.InsertMessage).
func insertMessage(ctx context.Context, tx *tx, m *simgate.Message, requestHash []byte) error {
	switch {
	case m.To == "":
		return simgate.Errorf(simgate.CodeInvalid, "message has no recipient")
	case !m.Status.Valid():
		return simgate.Errorf(simgate.CodeInvalid, "message has no valid status: %q", m.Status)
	case len(m.Parts) == 0:
		return simgate.Errorf(simgate.CodeInvalid, "message has no part")
	}
	for i, p := range m.Parts {
		if !p.Status.Valid() {
			return simgate.Errorf(simgate.CodeInvalid, "part %d of the message has no valid status: %q", i+1, p.Status)
		}
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
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultMessageLimit
	}
	limit = min(limit, MaxMessageLimit)
	if f.Status != "" && !f.Status.Valid() {
		return nil, "", simgate.Errorf(simgate.CodeInvalid, "status %q is not a message status", f.Status)
	}
	var where []string
	var args []any
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.To != "" {
		where, args = append(where, "to_number = ?"), append(args, f.To)
	}
	if f.Cursor != "" {
		at, id, err := parseCursor(f.Cursor)
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
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(last.CreatedAt.UnixMilli(), 10) + ":" + last.ID))
	}
	return ms, next, nil
}

func parseCursor(c string) (int64, string, error) {
	bad := simgate.Errorf(simgate.CodeInvalid, "cursor %q is not valid", c)
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", bad
	}
	at, id, ok := strings.Cut(string(b), ":")
	if !ok {
		return 0, "", bad
	}
	ms, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return 0, "", bad
	}
	return ms, id, nil
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
