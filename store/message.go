package store

import (
	"bytes"
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
// that transaction too.
func (db *DB) CreateMessage(ctx context.Context, m *simgate.Message, requestHash []byte) (created bool, err error) {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return false, fmt.Errorf("cannot create message: %w", err)
	}
	defer tx.Rollback()

	if m.IdempotencyKey != "" {
		var id string
		var hash []byte
		err := tx.QueryRowContext(ctx, `
			SELECT id, request_hash FROM messages WHERE api_key_id IS ? AND idempotency_key = ?
		`, nullIfEmpty(m.APIKeyID), m.IdempotencyKey).Scan(&id, &hash)
		switch {
		case err == nil && bytes.Equal(hash, requestHash):
			old, err := findMessage(ctx, tx, id)
			if err != nil {
				return false, err
			}
			*m = *old
			return false, nil
		case err == nil:
			return false, simgate.Errorf(simgate.CodeConflict,
				"idempotency key %q was already used for a different request", m.IdempotencyKey)
		case !errors.Is(err, sql.ErrNoRows):
			return false, fmt.Errorf("cannot look up idempotency key: %w", err)
		}
	}
	if m.VerificationID == "" {
		var keyword string
		err := tx.QueryRowContext(ctx, `SELECT keyword FROM opt_outs WHERE number = ?`, m.To).Scan(&keyword)
		if err == nil {
			return false, simgate.Errorf(simgate.CodeForbidden,
				"%s opted out of messages (replied %s); only verification codes are sent to it until it replies START",
				m.To, keyword)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("cannot look up opt-out: %w", err)
		}
	}
	if err := createMessage(ctx, tx, m, requestHash); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("cannot create message: %w", err)
	}
	return true, nil
}

func createMessage(ctx context.Context, tx *tx, m *simgate.Message, requestHash []byte) error {
	if m.To == "" {
		return simgate.Errorf(simgate.CodeInvalid, "message has no recipient")
	}
	m.ID = simgate.NewID("msg", tx.now)
	m.Status = simgate.StatusQueued
	m.Reason = "accepted"
	m.CreatedAt, m.UpdatedAt = tx.now, tx.now
	if m.Priority == 0 {
		m.Priority = simgate.PriorityNormal
	}
	var nextAttempt int64
	if !m.NextAttemptAt.IsZero() {
		nextAttempt = m.NextAttemptAt.UnixMilli()
	}
	if !m.SendAt.IsZero() {
		m.SendAt = ceilMilli(m.SendAt)
		nextAttempt = max(nextAttempt, m.SendAt.UnixMilli())
		if m.SendAt.After(tx.now) {
			m.Status = simgate.StatusScheduled
			m.Reason = "scheduled for " + m.SendAt.Format(time.RFC3339Nano)
		}
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
	n := max(len(m.Parts), 1)
	m.Parts = make([]simgate.Part, n)
	for i := range m.Parts {
		m.Parts[i] = simgate.Part{MessageID: m.ID, Seq: i + 1, Status: simgate.StatusQueued, MR: -1, ReportStatus: -1}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO message_parts (message_id, seq, status) VALUES (?, ?, ?)
		`, m.ID, i+1, simgate.StatusQueued); err != nil {
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

// ClaimMessage takes the next message that is due, highest priority first,
// and commits it as sending under a lease held by owner, before any modem is
// asked: a crash after this point leaves it in sending, never resent blindly.
// In the same transaction it finishes, without sending them, queued messages
// that may no longer go out: past their expiry, or belonging to a
// verification that expired or is no longer pending. It returns nil when no
// message is due. The claimed message's ExpiresAt is when it stops being
// worth sending: the earlier of its own expiry and, for a verification's SMS,
// the verification's (for simgate.SendRequest.NotAfter).
func (db *DB) ClaimMessage(ctx context.Context, owner string, lease time.Duration) (*simgate.Message, error) {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot claim message: %w", err)
	}
	defer tx.Rollback()
	m, err := claimMessage(ctx, tx, owner, lease)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("cannot claim message: %w", err)
	}
	return m, nil
}

// FinishAndClaim records the outcome of the send of message id, as
// FinishSend, and claims the next message, as ClaimMessage, in one
// transaction: a dispatcher worker between two submits pays for one commit.
func (db *DB) FinishAndClaim(ctx context.Context, id string, o simgate.SendOutcome, owner string, lease time.Duration) (*simgate.Message, error) {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot finish send: %w", err)
	}
	defer tx.Rollback()
	if err := finishSend(ctx, tx, id, o); err != nil {
		return nil, err
	}
	m, err := claimMessage(ctx, tx, owner, lease)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("cannot finish send: %w", err)
	}
	return m, nil
}

func claimMessage(ctx context.Context, tx *tx, owner string, lease time.Duration) (*simgate.Message, error) {
	now := tx.now.UnixMilli()
	for {
		var (
			m                     simgate.Message
			priority              int
			expiresAt, vExpires   sql.NullInt64
			vid, vstatus, waiting sql.NullString
		)
		err := tx.QueryRowContext(ctx, `
			SELECT m.id, m.to_number, m.text, m.priority, m.attempts, m.expires_at, m.verification_id,
				m.created_at, v.status, v.expires_at, m.waiting_for_modem
			FROM messages m LEFT JOIN verifications v ON v.id = m.verification_id
			WHERE m.status = 'queued' AND m.next_attempt_at <= ?
			ORDER BY m.priority DESC, m.next_attempt_at, m.created_at
			LIMIT 1
		`, now).Scan(&m.ID, &m.To, &m.Text, &priority, &m.Attempts, &expiresAt, &vid,
			new(int64), &vstatus, &vExpires, &waiting)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("cannot claim message: %w", err)
		}
		if status, reason := stale(now, expiresAt, vid, vstatus, vExpires, waiting); status != "" {
			if err := endUnsent(ctx, tx, m.ID, status, reason); err != nil {
				return nil, err
			}
			continue
		}
		m.Priority = simgate.Priority(priority)
		m.ExpiresAt = fromMillis(expiresAt)
		if vid.Valid && vExpires.Valid && (m.ExpiresAt.IsZero() || vExpires.Int64 < expiresAt.Int64) {
			m.ExpiresAt = fromMillis(vExpires)
		}
		m.VerificationID = vid.String
		m.Attempts++
		m.Status = simgate.StatusSending
		m.Reason = fmt.Sprintf("attempt %d", m.Attempts)
		if _, err := tx.ExecContext(ctx, `
			UPDATE messages SET status = 'sending', reason = ?, attempts = attempts + 1,
				lease_owner = ?, lease_expires_at = ?, updated_at = ?
			WHERE id = ?
		`, m.Reason, owner, now+lease.Milliseconds(), now, m.ID); err != nil {
			return nil, fmt.Errorf("cannot claim message: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE message_parts SET status = 'sending', attempts = attempts + 1
			WHERE message_id = ? AND status = 'queued'
		`, m.ID); err != nil {
			return nil, fmt.Errorf("cannot claim message: %w", err)
		}
		if err := addEvent(ctx, tx, m.ID, m.Status, m.Reason); err != nil {
			return nil, err
		}
		return &m, nil
	}
}

// stale says whether a queued message may no longer be sent, and why. The
// expiry of a message that was waiting for a modem (waiting: why) says so.
func stale(now int64, expiresAt sql.NullInt64, vid, vstatus sql.NullString, vExpires sql.NullInt64, waiting sql.NullString) (simgate.MessageStatus, string) {
	var status simgate.MessageStatus
	var reason string
	switch {
	case expiresAt.Valid && expiresAt.Int64 <= now:
		status, reason = simgate.StatusExpired, "expired before it could be sent"
	case !vid.Valid:
		return "", ""
	case !vstatus.Valid:
		return simgate.StatusCanceled, "its verification no longer exists"
	case vstatus.String == string(simgate.VerificationExpired) || vstatus.String == "pending" && vExpires.Int64 <= now:
		status, reason = simgate.StatusExpired, "its verification expired before it could be sent"
	case vstatus.String != "pending":
		return simgate.StatusCanceled, "its verification is " + strings.ReplaceAll(vstatus.String, "_", " ")
	default:
		return "", ""
	}
	if waiting.Valid {
		reason += " (" + waiting.String + ")"
	}
	return status, reason
}

// endUnsent gives a message that was never submitted, and its parts, a final
// status.
func endUnsent(ctx context.Context, tx *tx, id string, status simgate.MessageStatus, reason string) error {
	now := tx.now.UnixMilli()
	if _, err := tx.ExecContext(ctx, `
		UPDATE messages SET status = ?, reason = ?, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
		WHERE id = ?
	`, status, reason, now, id); err != nil {
		return fmt.Errorf("cannot update message: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE message_parts SET status = ?, done_at = ? WHERE message_id = ? AND status IN ('accepted', 'queued', 'sending')
	`, status, now, id); err != nil {
		return fmt.Errorf("cannot update message parts: %w", err)
	}
	if status == simgate.StatusFailed {
		if err := failVerification(ctx, tx, id); err != nil {
			return err
		}
	}
	return addEvent(ctx, tx, id, status, reason)
}

// FinishSend records the outcome of a submit of message id (see
// simgate.SendOutcome) and releases its lease. It applies to a message in
// sending, or in unknown when a sweep gave up on it meanwhile; for any other
// status it does nothing. The parts o.ModemID sent, or may have sent, count
// in its daily usage (LoadUsage). When the message ends failed, a pending
// verification it belongs to becomes failed too. An o.NoModem outcome was
// no attempt: see waitForModem.
func (db *DB) FinishSend(ctx context.Context, id string, o simgate.SendOutcome) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot finish send: %w", err)
	}
	defer tx.Rollback()
	if err := finishSend(ctx, tx, id, o); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot finish send: %w", err)
	}
	return nil
}

func finishSend(ctx context.Context, tx *tx, id string, o simgate.SendOutcome) (err error) {
	var status simgate.MessageStatus
	var nparts int
	var to string
	var claimed int64 // updated_at: when the message was claimed, while it is sending
	err = tx.QueryRowContext(ctx, `
		SELECT status, to_number, updated_at, (SELECT count(*) FROM message_parts WHERE message_id = messages.id)
		FROM messages WHERE id = ?
	`, id).Scan(&status, &to, &claimed, &nparts)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("message", id)
	} else if err != nil {
		return fmt.Errorf("cannot finish send: %w", err)
	}
	if status != simgate.StatusSending && status != simgate.StatusUnknown {
		return nil
	}
	if o.NoModem {
		return waitForModem(ctx, tx, id, o)
	}
	now := tx.now.UnixMilli()
	sentAt := o.SentAt
	if sentAt.IsZero() {
		sentAt = tx.now
	}

	// The modem, not our plan, decides how many parts a text takes.
	if o.Status == simgate.StatusSent && len(o.MRs) != nparts && len(o.MRs) > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM message_parts WHERE message_id = ? AND seq > ?`, id, len(o.MRs)); err != nil {
			return fmt.Errorf("cannot adjust message parts: %w", err)
		}
		for seq := nparts + 1; seq <= len(o.MRs); seq++ {
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO message_parts (message_id, seq, status, attempts) VALUES (?, ?, 'sending', 1)
			`, id, seq); err != nil {
				return fmt.Errorf("cannot adjust message parts: %w", err)
			}
		}
		nparts = len(o.MRs)
	}
	for i, mr := range o.MRs {
		if _, err := tx.ExecContext(ctx, `
			UPDATE message_parts SET status = 'sent', modem_id = ?, mr = ?, submitted_at = ? WHERE message_id = ? AND seq = ?
		`, o.ModemID, mr&0xFF, sentAt.UnixMilli(), id, i+1); err != nil {
			return fmt.Errorf("cannot update message part: %w", err)
		}
	}
	rest := len(o.MRs) + 1
	if o.Ambiguous && rest <= nparts {
		if _, err := tx.ExecContext(ctx, `
			UPDATE message_parts SET status = 'unknown', modem_id = nullif(?, ''), done_at = ? WHERE message_id = ? AND seq = ?
		`, o.ModemID, now, id, rest); err != nil {
			return fmt.Errorf("cannot update message part: %w", err)
		}
		rest++
	}
	// The modem's daily usage counts every part it may have sent (rest-1:
	// those with a reference and an ambiguous one), in this transaction, so
	// that the count and the messages agree after a crash and the worker
	// commits once between two submits.
	if used := rest - 1; used > 0 && o.ModemID != "" {
		if err := addUsage(ctx, tx, o.ModemID, sentAt, used); err != nil {
			return err
		}
	}
	if o.Status != simgate.StatusSent {
		var doneAt any
		if o.Status.Final() {
			doneAt = now
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE message_parts SET status = ?, done_at = ? WHERE message_id = ? AND seq >= ?
		`, o.Status, doneAt, id, rest); err != nil {
			return fmt.Errorf("cannot update message parts: %w", err)
		}
	}

	next := o.Status
	if o.Status != simgate.StatusQueued {
		if next, err = foldParts(ctx, tx, id); err != nil {
			return err
		}
	}
	var retryAt int64
	if o.Status == simgate.StatusQueued {
		retryAt = o.RetryAt.UnixMilli()
	}
	defer func() {
		if err == nil && len(o.MRs) > 0 {
			err = matchEarlyReportsOf(ctx, tx, id, to, o, sentAt)
		}
		if err == nil && o.Ambiguous && o.ModemID != "" && len(o.MRs) < nparts {
			err = matchEarlyLateSubmit(ctx, tx, id, to, len(o.MRs)+1, o.ModemID, time.UnixMilli(claimed))
		}
	}()
	if _, err := tx.ExecContext(ctx, `
		UPDATE messages SET status = ?, reason = ?, modem_id = coalesce(nullif(?, ''), modem_id),
			next_attempt_at = CASE WHEN ? = 'queued' THEN ? ELSE next_attempt_at END,
			waiting_for_modem = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
		WHERE id = ?
	`, next, o.Reason, o.ModemID, next, retryAt, now, id); err != nil {
		return fmt.Errorf("cannot finish send: %w", err)
	}
	if next == simgate.StatusFailed {
		if err := failVerification(ctx, tx, id); err != nil {
			return err
		}
	}
	return addEvent(ctx, tx, id, next, o.Reason)
}

// waitForModem records a send of message id that found no modem to ask
// (o.NoModem). That was no attempt, so the claim is taken back whole: the
// message and its parts are queued again with the attempt given back, and
// the claim's event is removed. No modem is no modem for every message, so
// all queued messages that are due wait with it until o.RetryAt: one probe
// per retry, not one per message, finds out whether a modem is back, and
// Dispatcher.ModemReady ends the wait at once when one is. A message that
// starts waiting gets one event; one that already waits only a new due time.
func waitForModem(ctx context.Context, tx *tx, id string, o simgate.SendOutcome) error {
	now := tx.now.UnixMilli()
	retryAt := max(o.RetryAt.UnixMilli(), now)
	if _, err := tx.ExecContext(ctx, `
		DELETE FROM message_events
		WHERE id = (SELECT max(id) FROM message_events WHERE message_id = ?) AND status = 'sending'
	`, id); err != nil {
		return fmt.Errorf("cannot take back claim: %w", err)
	}
	// Parts without a reference are those the claim took; 'unknown' ones
	// when a sweep gave up on the claim's lease meanwhile.
	if _, err := tx.ExecContext(ctx, `
		UPDATE message_parts SET status = 'queued', attempts = max(attempts - 1, 0), done_at = NULL
		WHERE message_id = ? AND status IN ('sending', 'unknown') AND mr = -1
	`, id); err != nil {
		return fmt.Errorf("cannot take back claim: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE messages SET status = 'queued', attempts = max(attempts - 1, 0),
			lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
		WHERE id = ?
	`, now, id); err != nil {
		return fmt.Errorf("cannot take back claim: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO message_events (message_id, at, status, reason)
		SELECT id, ?, 'queued', ? FROM messages
		WHERE status = 'queued' AND next_attempt_at <= ? AND waiting_for_modem IS NULL
	`, now, o.Reason, now); err != nil {
		return fmt.Errorf("cannot record message event: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE messages SET waiting_for_modem = ?, reason = ?, next_attempt_at = ?, updated_at = ?
		WHERE status = 'queued' AND next_attempt_at <= ?
	`, o.Reason, o.Reason, retryAt, now, now); err != nil {
		return fmt.Errorf("cannot make messages wait for a modem: %w", err)
	}
	return nil
}

// WakeWaiting makes the queued messages that wait for a modem due now, for
// when a modem became ready, and returns how many it changed.
func (db *DB) WakeWaiting(ctx context.Context) (int, error) {
	n, err := db.execAlone(ctx, "wake messages waiting for a modem", func(tx *tx) (sql.Result, error) {
		now := tx.now.UnixMilli()
		return tx.ExecContext(ctx, `
			UPDATE messages SET next_attempt_at = ?
			WHERE status = 'queued' AND waiting_for_modem IS NOT NULL AND next_attempt_at > ?
		`, now, now)
	})
	return int(n), err
}

// matchEarlyReportsOf looks for reports on the parts that o says went out
// to to that arrived before this was recorded.
func matchEarlyReportsOf(ctx context.Context, tx *tx, id, to string, o simgate.SendOutcome, sentAt time.Time) error {
	for i, mr := range o.MRs {
		if err := matchEarlyReports(ctx, tx, id, i+1, o.ModemID, mr&0xFF, to, sentAt); err != nil {
			return err
		}
	}
	return nil
}

// foldParts derives a message's status from its parts': any part still with
// the dispatcher wins, then any part waiting for its report (sent), then
// unknown, then failed; delivered only when every part was.
func foldParts(ctx context.Context, tx *tx, id string) (simgate.MessageStatus, error) {
	// One row, so that the writer's prepared statement serves it.
	var statuses string
	if err := tx.QueryRowContext(ctx, `
		SELECT coalesce(group_concat(DISTINCT status), '') FROM message_parts WHERE message_id = ?
	`, id).Scan(&statuses); err != nil {
		return "", fmt.Errorf("cannot read message parts: %w", err)
	}
	seen := map[simgate.MessageStatus]bool{}
	for s := range strings.SplitSeq(statuses, ",") {
		seen[simgate.MessageStatus(s)] = true
	}
	for _, s := range []simgate.MessageStatus{simgate.StatusSending, simgate.StatusQueued, simgate.StatusAccepted,
		simgate.StatusSent, simgate.StatusUnknown, simgate.StatusFailed, simgate.StatusExpired, simgate.StatusCanceled} {
		if seen[s] {
			return s, nil
		}
	}
	return simgate.StatusDelivered, nil
}

// failVerification marks the verification of message id failed while it is
// still pending: its code can no longer arrive. The code hash goes with it,
// as for every verification that leaves pending.
func failVerification(ctx context.Context, tx *tx, messageID string) error {
	if _, err := tx.ExecContext(ctx, `
		UPDATE verifications SET status = 'failed', code_hash = NULL, updated_at = ?
		WHERE id = (SELECT verification_id FROM messages WHERE id = ?) AND status = 'pending'
	`, tx.now.UnixMilli(), messageID); err != nil {
		return fmt.Errorf("cannot fail verification: %w", err)
	}
	return nil
}

// RecoverSending deals with messages left in sending by a dispatcher that
// died while asking a modem: those whose lease belongs to owner, has no
// owner, or has expired. The modem may have sent them, so they become unknown,
// or queued again when resend is true. An empty owner takes only expired
// leases. It returns how many messages it changed.
func (db *DB) RecoverSending(ctx context.Context, owner string, resend bool) (int, error) {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot recover messages: %w", err)
	}
	defer tx.Rollback()

	now := tx.now.UnixMilli()
	rows, err := tx.QueryContext(ctx, `
		SELECT id FROM messages
		WHERE status = 'sending' AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires_at <= ?)
	`, owner, now)
	if err != nil {
		return 0, fmt.Errorf("cannot recover messages: %w", err)
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return 0, fmt.Errorf("cannot recover messages: %w", err)
	}
	for _, id := range ids {
		o := simgate.SendOutcome{Status: simgate.StatusUnknown, Ambiguous: true,
			Reason: "interrupted while a modem was asked to send it; it may have gone out, so it is not resent"}
		if resend {
			o = simgate.SendOutcome{Status: simgate.StatusQueued, RetryAt: tx.now,
				Reason: "interrupted while a modem was asked to send it; queued again (resend of unknown messages is on)"}
		}
		if err := finishSend(ctx, tx, id, o); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cannot recover messages: %w", err)
	}
	return len(ids), nil
}

// ExpireMessages finishes queued messages that may no longer be sent (see
// ClaimMessage) and returns how many it finished.
func (db *DB) ExpireMessages(ctx context.Context) (int, error) {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot expire messages: %w", err)
	}
	defer tx.Rollback()
	now := tx.now.UnixMilli()
	rows, err := tx.QueryContext(ctx, `
		SELECT m.id, m.expires_at, m.verification_id, v.status, v.expires_at, m.waiting_for_modem
		FROM messages m LEFT JOIN verifications v ON v.id = m.verification_id
		WHERE m.status IN ('scheduled', 'accepted', 'queued')
			AND (m.expires_at <= ? OR (m.verification_id IS NOT NULL AND (v.status IS NOT 'pending' OR v.expires_at <= ?)))
	`, now, now)
	if err != nil {
		return 0, fmt.Errorf("cannot expire messages: %w", err)
	}
	type row struct {
		id                    string
		exp, vexp             sql.NullInt64
		vid, vstatus, waiting sql.NullString
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.exp, &r.vid, &r.vstatus, &r.vexp, &r.waiting); err != nil {
			rows.Close()
			return 0, fmt.Errorf("cannot expire messages: %w", err)
		}
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("cannot expire messages: %w", err)
	}
	n := 0
	for _, r := range rs {
		if status, reason := stale(now, r.exp, r.vid, r.vstatus, r.vexp, r.waiting); status != "" {
			if err := endUnsent(ctx, tx, r.id, status, reason); err != nil {
				return 0, err
			}
			n++
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cannot expire messages: %w", err)
	}
	return n, nil
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

// CancelMessage cancels a message that no modem was asked to send yet
// (scheduled, accepted or queued). It returns simgate.CodeNotFound for an unknown id and
// simgate.CodeConflict for a message past that point.
func (db *DB) CancelMessage(ctx context.Context, id, reason string) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot cancel message: %w", err)
	}
	defer tx.Rollback()
	var status simgate.MessageStatus
	err = tx.QueryRowContext(ctx, `SELECT status FROM messages WHERE id = ?`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("message", id)
	} else if err != nil {
		return fmt.Errorf("cannot cancel message: %w", err)
	}
	if status != simgate.StatusScheduled && status != simgate.StatusAccepted && status != simgate.StatusQueued {
		return simgate.Errorf(simgate.CodeConflict, "message %q is %s and can no longer be canceled", id, status)
	}
	if reason == "" {
		reason = "canceled"
	}
	if err := endUnsent(ctx, tx, id, simgate.StatusCanceled, reason); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot cancel message: %w", err)
	}
	return nil
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
