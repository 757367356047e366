package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
)

// UpdateMessages runs fn in one transaction, which it commits when fn
// returns nil and rolls back otherwise. The queue holds the rules of the
// message state machine (queue/state.go, queue/report.go); fn does its
// reads and writes through the simgate.MessageTx it is given, which must
// not be used after fn returns. fn must not block on anything but the
// transaction.
//
// The SQLite store runs these transactions one at a time; here several
// hosts run them at once, at READ COMMITTED. What keeps a rule's read true
// until its write is a row lock taken by the read:
//
//   - NextDueMessage claims with FOR UPDATE SKIP LOCKED: a message another
//     transaction is claiming is passed over, so that two hosts never
//     claim one message, and neither waits for the other.
//   - MessageState (before Finish's EndAttempt and the like), LeasedMessages
//     (recovery), FindSubmittedPart and FindUnknownPart (matching a report
//     or a late submit answer to a part) lock the message rows they return
//     FOR UPDATE; UnmatchedReports and UnmatchedLateSubmit lock the reports
//     and answers they return, so that one is matched once, and skip those
//     another transaction holds (it is matching them). A locking read that
//     waited sees the row as the transaction it waited for left it, and
//     returns it only when it still matches.
//   - Reads that return many rows lock them in the order of their id, so
//     that two of them never wait for each other crosswise. The sweeps
//     (ExpiredUnsentMessages, DueScheduledMessages, QueueDueScheduled,
//     DelayDueMessages, WakeWaitingMessages, SentMessagesSubmittedBefore)
//     skip the messages other transactions hold (SKIP LOCKED): those are
//     being claimed or finished, as if they had been before the sweep, and
//     the next sweep finds what is left.
//
// A transaction's writes hold the rows they changed until it ends: the
// message rows, their parts, and the per-modem rows of the day's usage and
// the hourly rollups (modem_hourly). A transaction that wrote must
// therefore not wait for a message row, or it could wait for a transaction
// that waits for it: the reads that wait (MessageState, LeasedMessages,
// FindSubmittedPart, FindUnknownPart) come before the writes in the
// queue's rules, and what reads after writing skips (SKIP LOCKED:
// NextDueMessage in a finish and claim, DelayDueMessages after
// UndoAttempt, queue/state.go's waitForModem; UnmatchedReports and
// UnmatchedLateSubmit after Finish's writes). The same holds for
// UpdateVerifications, whose only wait for message rows,
// CancelQueuedMessages, comes before it creates the new message
// (verify/verify.go). The counts of statuses take no lock that another
// transaction could want: the schema's trigger appends to them
// (status_counts, migrations/0004_status_count_deltas.sql), so that
// status changes on several hosts neither take turns there nor deadlock
// (TestFinishAndClaimConcurrently). Until that migration a finish and a
// claim in one transaction (queue/queue.go's finishAndClaim) locked the
// count rows of 'sending' and 'sent', then of 'queued', while a lone
// claim locked 'queued', then 'sending', and PostgreSQL aborted one of
// the two as deadlocked.
//
// UpdateMessages does not retry a transaction PostgreSQL aborted (db.update
// says why).
//
// The lock order is message rows before a verification's row, in both
// kinds of transaction. A message transaction takes a verification after
// the message: FailPendingVerification, and the foreign key check of
// messages.verification_id (FOR KEY SHARE of the verification) that
// PostgreSQL runs when a transaction updates a message row it wrote
// itself. UpdateVerifications' resend locks a verification's accepted and
// queued messages before its row (verification.go says how, and how the
// deadlock of the other order went). Its one wait for a message while it
// holds the row is CancelQueuedMessages' for a message that became queued
// again since, which a claim may hold; a claim takes no verification after
// it (Claim comes last in the queue's transactions, and its foreign key
// check does not wait for the FOR NO KEY UPDATE the verification
// transaction holds). A caller that claimed a verification's message and
// then failed the verification in the same transaction could still
// deadlock with a resend of it: PostgreSQL would abort one of the two with
// SQLSTATE 40P01 (deadlock_detected), and nothing of it would be written.
func (db *DB) UpdateMessages(ctx context.Context, fn func(simgate.MessageTx) error) error {
	return db.update(ctx, "message", func(tx *tx) error { return fn(messageTx{tx}) })
}

// messageTx is the simgate.MessageTx of a transaction. Its methods on
// status reports and late submit answers are in report.go.
type messageTx struct{ tx *tx }

func (t messageTx) Now() time.Time { return t.tx.now }

func (t messageTx) FindMessage(ctx context.Context, id string) (*simgate.Message, error) {
	return findMessage(ctx, t.tx, id)
}

func (t messageTx) MessageState(ctx context.Context, id string) (*simgate.MessageState, error) {
	var parts []string
	var status string
	var updatedAt int64
	s := simgate.MessageState{ID: id}
	err := t.tx.QueryRow(ctx, `
		SELECT status, to_number, updated_at,
			ARRAY(SELECT p.status FROM message_parts p WHERE p.message_id = messages.id ORDER BY p.seq)
		FROM messages WHERE id = $1
		FOR UPDATE
	`, id).Scan(&status, &s.To, &updatedAt, &parts)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("message", id)
	} else if err != nil {
		return nil, fmt.Errorf("cannot read message: %w", err)
	}
	s.Status = simgate.MessageStatus(status)
	s.UpdatedAt = time.UnixMilli(updatedAt).UTC()
	for _, p := range parts {
		s.Parts = append(s.Parts, simgate.MessageStatus(p))
	}
	return &s, nil
}

func (t messageTx) IdempotentMessage(ctx context.Context, apiKeyID, key string) (string, []byte, error) {
	var id string
	var hash []byte
	err := t.tx.QueryRow(ctx, `
		SELECT id, request_hash FROM messages WHERE api_key_id IS NOT DISTINCT FROM $1 AND idempotency_key = $2
	`, nullIfEmpty(apiKeyID), key).Scan(&id, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
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

func scanUnsent(sc pgx.Row) (*simgate.UnsentMessage, error) {
	var (
		u                           simgate.UnsentMessage
		priority                    int
		status                      string
		createdAt                   int64
		sendAt, expiresAt, vExpires *int64
		vid, vstatus, waiting       *string
		sticky                      *string
	)
	if err := sc.Scan(&u.ID, &u.To, &u.Text, &priority, &status, &u.Attempts, &sendAt, &expiresAt,
		&vid, &createdAt, &vstatus, &vExpires, &waiting, &sticky); err != nil {
		return nil, err
	}
	u.Priority, u.Status = simgate.Priority(priority), simgate.MessageStatus(status)
	u.SendAt, u.ExpiresAt = fromMillis(sendAt), fromMillis(expiresAt)
	u.VerificationID = deref(vid)
	u.CreatedAt = time.UnixMilli(createdAt).UTC()
	u.VerificationStatus = simgate.VerificationStatus(deref(vstatus))
	u.VerificationExpiresAt = fromMillis(vExpires)
	u.WaitingForModem = deref(waiting)
	u.StickyModem = deref(sticky)
	return &u, nil
}

// queryUnsent returns the unsent messages a query of unsentColumns finds.
func queryUnsent(ctx context.Context, tx *tx, what, query string, args ...any) ([]*simgate.UnsentMessage, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot find %s: %w", what, err)
	}
	us, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*simgate.UnsentMessage, error) { return scanUnsent(row) })
	if err != nil {
		return nil, fmt.Errorf("cannot find %s: %w", what, err)
	}
	return us, nil
}

func (t messageTx) NextDueMessage(ctx context.Context, elsewhere []string) (*simgate.UnsentMessage, error) {
	// SKIP LOCKED: a message another transaction claims is not this one's
	// (UpdateMessages). A nil array would be NULL, which <> ALL never
	// passes.
	if elsewhere == nil {
		elsewhere = []string{}
	}
	u, err := scanUnsent(t.tx.QueryRow(ctx, `
		SELECT `+unsentColumns+` FROM `+unsentFrom+`
		WHERE m.status = 'queued' AND m.next_attempt_at <= $1
			AND (m.verification_id IS NULL OR coalesce(`+stickyModem+`, '') <> ALL ($2::text[]))
		ORDER BY m.priority DESC, m.next_attempt_at, m.created_at
		LIMIT 1
		FOR UPDATE OF m SKIP LOCKED
	`, t.tx.now.UnixMilli(), elsewhere))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("cannot find the next due message: %w", err)
	}
	return u, nil
}

func (t messageTx) ExpiredUnsentMessages(ctx context.Context) ([]*simgate.UnsentMessage, error) {
	return queryUnsent(ctx, t.tx, "expired messages", `
		SELECT `+unsentColumns+` FROM `+unsentFrom+`
		WHERE m.status IN ('scheduled', 'accepted', 'queued')
			AND (m.expires_at <= $1 OR (m.verification_id IS NOT NULL AND (v.status IS DISTINCT FROM 'pending' OR v.expires_at <= $1)))
		ORDER BY m.id
		FOR UPDATE OF m SKIP LOCKED
	`, t.tx.now.UnixMilli())
}

func (t messageTx) DueScheduledMessages(ctx context.Context) ([]*simgate.UnsentMessage, error) {
	return queryUnsent(ctx, t.tx, "due scheduled messages", `
		SELECT `+unsentColumns+` FROM `+unsentFrom+` WHERE m.status = 'scheduled' AND m.send_at <= $1
		ORDER BY m.id
		FOR UPDATE OF m SKIP LOCKED
	`, t.tx.now.UnixMilli())
}

func (t messageTx) LeasedMessages(ctx context.Context, owner string) ([]string, error) {
	return queryIDs(ctx, t.tx, "leased messages", `
		SELECT id FROM messages
		WHERE status = 'sending' AND (lease_owner IS NULL OR lease_owner = $1 OR lease_expires_at <= $2)
		ORDER BY id
		FOR UPDATE
	`, owner, t.tx.now.UnixMilli())
}

func (t messageTx) SentMessagesSubmittedBefore(ctx context.Context, before time.Time, limit int) ([]string, error) {
	// A message's updated_at is no earlier than its last submit: the index
	// on it narrows the search to messages that may qualify. The rows are
	// locked, and skipped when another transaction holds them (a report
	// being matched): SetReportsMissing follows.
	return queryIDs(ctx, t.tx, "sent messages", `
		SELECT id FROM messages m
		WHERE status = 'sent' AND reports_missing_at IS NULL AND updated_at <= $1
			AND NOT EXISTS (SELECT 1 FROM message_parts p
				WHERE p.message_id = m.id AND p.status = 'sent' AND coalesce(p.submitted_at, 0) > $1)
		ORDER BY updated_at, id
		LIMIT $2
		FOR UPDATE SKIP LOCKED
	`, before.UnixMilli(), limit)
}

// queryIDs returns the ids a query finds; what names them in errors.
func queryIDs(ctx context.Context, q querier, what, query string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot find %s: %w", what, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("cannot find %s: %w", what, err)
	}
	return ids, nil
}

func (t messageTx) RenewLeases(ctx context.Context, owner string, until time.Time) (int, error) {
	// The rows are locked in id order, as LeasedMessages locks them: a
	// renewal and a recovery (a node starting, a sweep taking expired
	// leases) locking the same rows in other orders deadlock, and a node
	// killed while it renewed leaves its statement running on the server
	// until it finds the client gone.
	tag, err := t.tx.Exec(ctx, `
		UPDATE messages SET lease_expires_at = $1
		WHERE id IN (SELECT id FROM messages WHERE status = 'sending' AND lease_owner = $2 AND lease_expires_at < $1
			ORDER BY id FOR UPDATE)
	`, until.UnixMilli(), owner)
	if err != nil {
		return 0, fmt.Errorf("cannot renew leases: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

func (t messageTx) StartAttempt(ctx context.Context, id, reason, owner string, until time.Time) error {
	if _, err := t.tx.Exec(ctx, `
		UPDATE messages SET status = 'sending', reason = $1, attempts = attempts + 1,
			lease_owner = $2, lease_expires_at = $3, updated_at = $4
		WHERE id = $5
	`, reason, owner, until.UnixMilli(), t.tx.now.UnixMilli(), id); err != nil {
		return fmt.Errorf("cannot start attempt: %w", err)
	}
	if _, err := t.tx.Exec(ctx, `
		UPDATE message_parts SET status = 'sending', attempts = attempts + 1
		WHERE message_id = $1 AND status = 'queued'
	`, id); err != nil {
		return fmt.Errorf("cannot start attempt: %w", err)
	}
	return nil
}

func (t messageTx) UndoAttempt(ctx context.Context, id string) error {
	if _, err := t.tx.Exec(ctx, `
		UPDATE message_parts SET status = 'queued', attempts = GREATEST(attempts - 1, 0), done_at = NULL
		WHERE message_id = $1 AND status IN ('sending', 'unknown') AND mr = -1
	`, id); err != nil {
		return fmt.Errorf("cannot undo attempt: %w", err)
	}
	if _, err := t.tx.Exec(ctx, `
		UPDATE messages SET status = 'queued', attempts = GREATEST(attempts - 1, 0),
			lease_owner = NULL, lease_expires_at = NULL, updated_at = $1
		WHERE id = $2
	`, t.tx.now.UnixMilli(), id); err != nil {
		return fmt.Errorf("cannot undo attempt: %w", err)
	}
	return nil
}

func (t messageTx) EndAttempt(ctx context.Context, id string, status simgate.MessageStatus, reason, modemID string, due time.Time) error {
	if _, err := t.tx.Exec(ctx, `
		UPDATE messages SET status = $1, reason = $2, modem_id = coalesce(nullif($3, ''), modem_id),
			next_attempt_at = coalesce($4, next_attempt_at),
			waiting_for_modem = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = $5
		WHERE id = $6
	`, string(status), reason, modemID, millis(due), t.tx.now.UnixMilli(), id); err != nil {
		return fmt.Errorf("cannot end attempt: %w", err)
	}
	return nil
}

func (t messageTx) SetMessageStatus(ctx context.Context, id string, status simgate.MessageStatus, reason string) error {
	return setMessageStatus(ctx, t.tx, id, status, reason)
}

func (t messageTx) SetReportsMissing(ctx context.Context, id, reason string) error {
	now := t.tx.now.UnixMilli()
	if _, err := t.tx.Exec(ctx, `
		UPDATE messages SET reason = $1, reports_missing_at = $2, updated_at = $2 WHERE id = $3
	`, reason, now, id); err != nil {
		return fmt.Errorf("cannot record missing reports: %w", err)
	}
	return nil
}

func (t messageTx) DelayDueMessages(ctx context.Context, until time.Time, reason string) error {
	// One statement, so that the events are those of exactly the messages
	// it changes, whatever other hosts change meanwhile.
	if _, err := t.tx.Exec(ctx, `
		WITH delayed AS (
			UPDATE messages m SET waiting_for_modem = $1, reason = $1, next_attempt_at = $2, updated_at = $3
			FROM (SELECT id, waiting_for_modem FROM messages WHERE status = 'queued' AND next_attempt_at <= $3
				ORDER BY id FOR UPDATE SKIP LOCKED) old
			WHERE m.id = old.id
			RETURNING m.id, old.waiting_for_modem IS NULL AS first
		)
		INSERT INTO message_events (message_id, at, status, reason)
		SELECT id, $3, 'queued', $1 FROM delayed WHERE first ORDER BY id
	`, reason, until.UnixMilli(), t.tx.now.UnixMilli()); err != nil {
		return fmt.Errorf("cannot make messages wait for a modem: %w", err)
	}
	return nil
}

func (t messageTx) WakeWaitingMessages(ctx context.Context) (int, error) {
	now := t.tx.now.UnixMilli()
	tag, err := t.tx.Exec(ctx, `
		UPDATE messages SET next_attempt_at = $1
		WHERE id IN (SELECT id FROM messages
			WHERE status = 'queued' AND waiting_for_modem IS NOT NULL AND next_attempt_at > $1
			ORDER BY id FOR UPDATE SKIP LOCKED)
	`, now)
	if err != nil {
		return 0, fmt.Errorf("cannot wake messages waiting for a modem: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

func (t messageTx) QueueDueScheduled(ctx context.Context, reason string) (int, error) {
	// One statement, as DelayDueMessages.
	var n int
	if err := t.tx.QueryRow(ctx, `
		WITH queued AS (
			UPDATE messages SET status = 'queued', reason = $1, updated_at = $2
			WHERE id IN (SELECT id FROM messages WHERE status = 'scheduled' AND send_at <= $2
				ORDER BY id FOR UPDATE SKIP LOCKED)
			RETURNING id
		), events AS (
			INSERT INTO message_events (message_id, at, status, reason)
			SELECT id, $2, 'queued', $1 FROM queued ORDER BY id
		)
		SELECT count(*) FROM queued
	`, reason, t.tx.now.UnixMilli()).Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot queue scheduled messages: %w", err)
	}
	return n, nil
}

func (t messageTx) AddMessageEvent(ctx context.Context, id string, status simgate.MessageStatus, reason string) error {
	return addEvent(ctx, t.tx, id, status, reason)
}

func (t messageTx) DeleteLastMessageEvent(ctx context.Context, id string, status simgate.MessageStatus) error {
	if _, err := t.tx.Exec(ctx, `
		DELETE FROM message_events
		WHERE id = (SELECT max(id) FROM message_events WHERE message_id = $1) AND status = $2
	`, id, string(status)); err != nil {
		return fmt.Errorf("cannot delete message event: %w", err)
	}
	return nil
}

func (t messageTx) SetPartCount(ctx context.Context, id string, n int, status simgate.MessageStatus, attempts int) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM message_parts WHERE message_id = $1 AND seq > $2`, id, n); err != nil {
		return fmt.Errorf("cannot change message parts: %w", err)
	}
	if _, err := t.tx.Exec(ctx, `
		INSERT INTO message_parts (message_id, seq, status, attempts)
		SELECT $1, seq, $3, $4 FROM generate_series(1, $2::bigint) seq
		ON CONFLICT (message_id, seq) DO NOTHING
	`, id, n, string(status), attempts); err != nil {
		return fmt.Errorf("cannot change message parts: %w", err)
	}
	return nil
}

func (t messageTx) SetPartsStatus(ctx context.Context, id string, from, to int, status simgate.MessageStatus, modemID string, doneAt time.Time) error {
	return setPartsStatus(ctx, t.tx, id, from, to, status, modemID, doneAt)
}

func (t messageTx) SetPartSent(ctx context.Context, id string, seq int, modemID string, mr int, at time.Time) error {
	if _, err := t.tx.Exec(ctx, `
		UPDATE message_parts SET status = 'sent', modem_id = $1, mr = $2, submitted_at = $3 WHERE message_id = $4 AND seq = $5
	`, modemID, mr, at.UnixMilli(), id, seq); err != nil {
		return fmt.Errorf("cannot update message part: %w", err)
	}
	return nil
}

func (t messageTx) SetPartReport(ctx context.Context, id string, seq, tpst int, status simgate.MessageStatus, doneAt time.Time) error {
	if _, err := t.tx.Exec(ctx, `
		UPDATE message_parts SET status = coalesce(nullif($1, ''), status), report_status = $2, done_at = coalesce($3, done_at)
		WHERE message_id = $4 AND seq = $5
	`, string(status), tpst, millis(doneAt), id, seq); err != nil {
		return fmt.Errorf("cannot record status report: %w", err)
	}
	return nil
}

func (t messageTx) AddUsage(ctx context.Context, modemID string, at time.Time, n int) error {
	now := t.tx.now.UnixMilli()
	if _, err := t.tx.Exec(ctx, `
		INSERT INTO modems (id, first_seen, last_seen, sent) VALUES ($1, $2, $2, $3)
		ON CONFLICT (id) DO UPDATE SET sent = modems.sent + excluded.sent
	`, modemID, now, n); err != nil {
		return fmt.Errorf("cannot add daily usage: %w", err)
	}
	if _, err := t.tx.Exec(ctx, `
		INSERT INTO modem_daily_usage (modem_id, day, sent) VALUES ($1, $2, $3)
		ON CONFLICT (modem_id, day) DO UPDATE SET sent = modem_daily_usage.sent + excluded.sent
	`, modemID, at.UTC().Format("2006-01-02"), n); err != nil {
		return fmt.Errorf("cannot add daily usage: %w", err)
	}
	return nil
}

func (t messageTx) FailPendingVerification(ctx context.Context, messageID string) error {
	// The verification's row is locked after the message's (UpdateMessages
	// says why that order).
	if _, err := t.tx.Exec(ctx, `
		UPDATE verifications SET status = 'failed', code_hash = NULL, updated_at = $1
		WHERE id = (SELECT verification_id FROM messages WHERE id = $2) AND status = 'pending'
	`, t.tx.now.UnixMilli(), messageID); err != nil {
		return fmt.Errorf("cannot fail verification: %w", err)
	}
	return nil
}
