package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
)

// UpdateVerifications runs fn in one transaction, which it commits when fn
// returns nil and rolls back otherwise. The verification service (verify)
// holds the rules; fn does its reads and writes through the
// simgate.VerificationTx it is given, which must not be used after fn
// returns. fn must not block on anything but the transaction.
//
// The SQLite store runs these transactions one at a time; here they run at
// once, on several hosts, at PostgreSQL's READ COMMITTED. What keeps the
// rules' reads true until their writes is a transaction-scoped advisory
// lock per number (lockNumber), taken by every read a rule decides on: the
// verifications of a number (PendingVerification, PendingCallVerification,
// and FindVerification for the number of the verification it finds), its
// sends and its failed checks (CountSends, CountFailures). The lock is the
// number's in every service, not per service and number, though a number
// has a pending verification per service: the sends and failures it guards
// are counted per number across services (verify's limits), and a missed
// call approves a pending verification of its caller whatever the service.
// Two transactions about one number therefore run one after the other: of
// concurrent starts one creates the pending verification and the others
// find it, and no count or attempt is lost. The verification read is also locked, against the writers that
// change it without the number's lock (ExpireVerifications, the queue's
// FailPendingVerification). SetVerificationStatus changes only a pending
// row, so that no verification leaves pending twice whatever locks a
// caller took.
//
// The lock order is that of the message transactions (UpdateMessages):
// message rows before the verification's row. PendingVerification, the
// read of a start or a resend, locks the verification's messages that no
// modem was asked to send yet, the ones a resend cancels
// (CancelQueuedMessages), before the verification's row. Were the row
// locked first, a transaction waiting for one of those messages (held by a
// host that claims or finishes it) would hold the verification that the
// host's transaction may need next: FailPendingVerification after a failed
// send, or the foreign key check of messages.verification_id, which
// PostgreSQL runs (FOR KEY SHARE of the verification) when a transaction
// updates a message row it wrote itself, such as a claim after a retry in
// one transaction. Both happened (TestResendBesideFailedSend). The row is
// locked FOR NO KEY UPDATE, the lock an UPDATE of it takes, which such a
// check does not wait for. FindVerification, the read of a check or a
// cancel, locks no message: neither waits for one. A rule that cancels the
// messages of a verification it read with FindVerification would wait for
// them holding the row, in the order that can deadlock.
func (db *DB) UpdateVerifications(ctx context.Context, fn func(simgate.VerificationTx) error) error {
	return db.update(ctx, "verification", func(tx *tx) error { return fn(verificationTx{tx}) })
}

// verificationTx is the simgate.VerificationTx of a transaction.
type verificationTx struct{ tx *tx }

func (t verificationTx) Now() time.Time { return t.tx.now }

// lockNumber takes the advisory lock of number's verifications until the
// transaction ends (UpdateVerifications says why). The transaction
// remembers the numbers it locked, so that the reads of a rule, which each
// take the lock, ask the server once (a start reads the number's sends,
// failures and pending verification).
func (t verificationTx) lockNumber(ctx context.Context, number string) error {
	if t.tx.lockedNumbers[number] {
		return nil
	}
	if _, err := t.tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('verification:' || $1, 0))`, number); err != nil {
		return fmt.Errorf("cannot lock the verifications of a number: %w", err)
	}
	t.tx.lockedNumber(number)
	return nil
}

func (t verificationTx) FindVerification(ctx context.Context, id string) (*simgate.Verification, simgate.MessageStatus, error) {
	// The lock of its number (which never changes) before the row's, as
	// PendingVerification takes them, so that the two never wait for
	// each other crosswise. The lock is a statement of its own: at READ
	// COMMITTED a statement sees what was committed when it began, so the
	// read that follows sees what the transaction it waited for wrote.
	var number string
	switch err := t.tx.QueryRow(ctx, `
		SELECT v.to_number FROM verifications v
		CROSS JOIN LATERAL pg_advisory_xact_lock(hashtextextended('verification:' || v.to_number, 0))
		WHERE v.id = $1
	`, id).Scan(&number); {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, "", simgate.Errorf(simgate.CodeNotFound, "verification not found")
	case err != nil:
		return nil, "", fmt.Errorf("cannot lock the verifications of a number: %w", err)
	}
	t.tx.lockedNumber(number)
	return findVerification(ctx, t.tx, `v.id = $1 FOR NO KEY UPDATE OF v`, id)
}

func (t verificationTx) PendingVerification(ctx context.Context, serviceID, number string) (*simgate.Verification, simgate.MessageStatus, error) {
	if err := t.lockNumber(ctx, number); err != nil {
		return nil, "", err
	}
	// Found unlocked, then locked after its unsent messages
	// (UpdateVerifications says why). Under the number's lock no other
	// verification of the number can become pending meanwhile; this one
	// may have left pending (FailPendingVerification, ExpireVerifications),
	// and then none is.
	v, _, err := findVerification(ctx, t.tx, `v.service_id = $1 AND v.to_number = $2 AND v.status = 'pending'
		ORDER BY v.created_at DESC, v.id DESC LIMIT 1`, serviceID, number)
	if err != nil {
		return nil, "", err
	}
	if _, err := t.tx.Exec(ctx, `
		SELECT id FROM messages WHERE verification_id = $1 AND status IN ('accepted', 'queued') ORDER BY id
		FOR UPDATE
	`, v.ID); err != nil {
		return nil, "", fmt.Errorf("cannot lock the messages of a verification: %w", err)
	}
	return findVerification(ctx, t.tx, `v.id = $1 AND v.status = 'pending' FOR NO KEY UPDATE OF v`, v.ID)
}

// SpentVerification takes the number's lock before it reads, as
// PendingVerification does; it reads and locks nothing else.
func (t verificationTx) SpentVerification(ctx context.Context, serviceID, number string) (*simgate.Verification, error) {
	if err := t.lockNumber(ctx, number); err != nil {
		return nil, err
	}
	v, _, err := findVerification(ctx, t.tx, `v.service_id = $1 AND v.to_number = $2 AND v.status = 'max_attempts_reached'
		AND v.expires_at > $3 ORDER BY v.created_at DESC, v.id DESC LIMIT 1`, serviceID, number, t.tx.now.UnixMilli())
	return v, err
}

// PendingCallVerification takes the number's lock before it reads, as
// PendingVerification does, and locks the row it finds. A missed-call
// verification has no messages, so none is locked before the row.
func (t verificationTx) PendingCallVerification(ctx context.Context, number, modemID string) (*simgate.Verification, error) {
	if err := t.lockNumber(ctx, number); err != nil {
		return nil, err
	}
	v, _, err := findVerification(ctx, t.tx, `v.to_number = $1 AND v.call_modem = $2 AND v.status = 'pending' AND v.channel = 'missed_call'
		ORDER BY v.created_at DESC, v.id DESC LIMIT 1 FOR NO KEY UPDATE OF v`, number, modemID)
	return v, err
}

func (t verificationTx) CreateVerification(ctx context.Context, v *simgate.Verification) error {
	if err := v.CheckCreate(); err != nil {
		return err
	}
	now := t.tx.now.UnixMilli()
	if _, err := t.tx.Exec(ctx, `
		INSERT INTO verifications (id, to_number, status, channel, call_to, call_modem, code_hash, code_length, locale,
		                           app_name, reference, max_attempts, send_count, api_key_id, expires_at, created_at,
		                           updated_at, service_id)
		VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $13, $14, $15, $16)
	`, v.ID, v.To, v.Channel, v.CallTo, v.CallModem, v.CodeHash, v.CodeLength, v.Locale, v.AppName, v.Reference, v.MaxAttempts,
		nullIfEmpty(v.APIKeyID), v.ExpiresAt.UnixMilli(), now, now, v.ServiceID); err != nil {
		return fmt.Errorf("cannot create verification: %w", err)
	}
	v.Status, v.Attempts, v.SendCount = simgate.VerificationPending, 0, 1
	v.CreatedAt, v.UpdatedAt, v.ApprovedAt = t.tx.now, t.tx.now, time.Time{}
	v.ExpiresAt = v.ExpiresAt.UTC().Truncate(time.Millisecond)
	return nil
}

func (t verificationTx) ResendVerification(ctx context.Context, v *simgate.Verification) error {
	tag, err := t.tx.Exec(ctx, `
		UPDATE verifications
		SET code_hash = $1, code_length = $2, locale = $3, app_name = $4, reference = $5, call_to = $6, call_modem = $7,
		    send_count = send_count + 1, expires_at = $8, updated_at = $9
		WHERE id = $10
	`, v.CodeHash, v.CodeLength, v.Locale, v.AppName, v.Reference, v.CallTo, v.CallModem, v.ExpiresAt.UnixMilli(),
		t.tx.now.UnixMilli(), v.ID)
	if err != nil {
		return fmt.Errorf("cannot resend verification: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("verification", v.ID)
	}
	v.UpdatedAt = t.tx.now
	v.ExpiresAt = v.ExpiresAt.UTC().Truncate(time.Millisecond)
	return nil
}

func (t verificationTx) SetVerificationAttempts(ctx context.Context, v *simgate.Verification) error {
	if _, err := t.tx.Exec(ctx, `UPDATE verifications SET attempts = $1, updated_at = $2 WHERE id = $3`,
		v.Attempts, t.tx.now.UnixMilli(), v.ID); err != nil {
		return fmt.Errorf("cannot count check attempt: %w", err)
	}
	v.UpdatedAt = t.tx.now
	return nil
}

// SetVerificationStatus moves a pending verification to status and erases
// its hash. The WHERE status = 'pending' makes a second transition a no-op
// that reports a conflict, so no verification is approved twice: at READ
// COMMITTED, an UPDATE that waited for another transaction's checks the
// row that transaction committed.
func (t verificationTx) SetVerificationStatus(ctx context.Context, v *simgate.Verification, status simgate.VerificationStatus) error {
	tag, err := t.tx.Exec(ctx, `
		UPDATE verifications SET status = $1, code_hash = NULL, updated_at = $2, approved_at = $3
		WHERE id = $4 AND status = 'pending'
	`, string(status), t.tx.now.UnixMilli(), millis(v.ApprovedAt), v.ID)
	if err != nil {
		return fmt.Errorf("cannot update verification: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return simgate.Errorf(simgate.CodeConflict, "verification %s is no longer pending", v.ID)
	}
	v.Status, v.CodeHash, v.UpdatedAt = status, nil, t.tx.now
	return nil
}

func (t verificationTx) CountSends(ctx context.Context, number string, since time.Time) (int, time.Time, error) {
	return t.countSince(ctx, "verification_sends", number, since)
}

func (t verificationTx) CountFailures(ctx context.Context, number string, since time.Time) (int, time.Time, error) {
	return t.countSince(ctx, "check_failures", number, since)
}

func (t verificationTx) AddSend(ctx context.Context, number string) error {
	if _, err := t.tx.Exec(ctx, `INSERT INTO verification_sends (number, at) VALUES ($1, $2)`, number, t.tx.now.UnixMilli()); err != nil {
		return fmt.Errorf("cannot count verification send: %w", err)
	}
	return nil
}

func (t verificationTx) AddFailure(ctx context.Context, number string) error {
	if _, err := t.tx.Exec(ctx, `INSERT INTO check_failures (number, at) VALUES ($1, $2)`, number, t.tx.now.UnixMilli()); err != nil {
		return fmt.Errorf("cannot count failed check: %w", err)
	}
	return nil
}

func (t verificationTx) CreateAlert(ctx context.Context, kind, subject, detail string) error {
	return createAlert(ctx, t.tx, kind, subject, detail)
}

func (t verificationTx) CreateAlertOnce(ctx context.Context, kind, subject, detail string, period time.Duration) (bool, error) {
	return createAlertOnce(ctx, t.tx, kind, subject, detail, period)
}

func (t verificationTx) CreateMessage(ctx context.Context, m *simgate.Message) error {
	return insertMessage(ctx, t.tx, m, nil)
}

// CancelQueuedMessages cancels the messages of a verification that no
// modem was asked to send yet: they and their parts become canceled, with
// reason and an event. Their rows are locked by the read, so that one a
// host claims meanwhile (UpdateMessages) is read as the claim left it, in
// sending, and is not canceled under the modem. PendingVerification
// locked them already; this read finds them as they are now, and locks,
// in the same order, one that became queued again since (a retry).
func (t verificationTx) CancelQueuedMessages(ctx context.Context, verificationID, reason string) error {
	rows, err := t.tx.Query(ctx, `
		SELECT id FROM messages WHERE verification_id = $1 AND status IN ('accepted', 'queued') ORDER BY id
		FOR UPDATE
	`, verificationID)
	if err != nil {
		return fmt.Errorf("cannot find queued messages: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("cannot find queued messages: %w", err)
	}
	for _, id := range ids {
		if err := setMessageStatus(ctx, t.tx, id, simgate.StatusCanceled, reason); err != nil {
			return err
		}
		if err := setPartsStatus(ctx, t.tx, id, 1, 0, simgate.StatusCanceled, "", t.tx.now); err != nil {
			return err
		}
		if err := addEvent(ctx, t.tx, id, simgate.StatusCanceled, reason); err != nil {
			return err
		}
	}
	return nil
}

// countSince counts the rows of table (verification_sends or check_failures)
// for number at or after since, and returns the time of the oldest of them,
// holding the number's lock (UpdateVerifications) from before it counts.
func (t verificationTx) countSince(ctx context.Context, table, number string, since time.Time) (int, time.Time, error) {
	if err := t.lockNumber(ctx, number); err != nil {
		return 0, time.Time{}, err
	}
	var n int
	var oldest *int64
	if err := t.tx.QueryRow(ctx, `SELECT count(*), min(at) FROM `+table+` WHERE number = $1 AND at >= $2`,
		number, since.UnixMilli()).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("cannot count %s: %w", table, err)
	}
	return n, fromMillis(oldest), nil
}

// GetVerification returns the verification with the given id, without its
// code hash, and the status of its newest SMS, as stored: the verification
// service decides what an expired or undeliverable pending one is. It
// returns a CodeNotFound error when there is none.
func (db *DB) GetVerification(ctx context.Context, id string) (*simgate.Verification, simgate.MessageStatus, error) {
	v, msgStatus, err := findVerification(ctx, db.pool, `v.id = $1`, id)
	if err != nil {
		return nil, "", err
	}
	v.CodeHash = nil
	return v, msgStatus, nil
}

// ExpireVerifications marks every pending verification past its expiry
// expired and erases its hash, so that no hash outlives its code's use. It
// returns how many it expired.
func (db *DB) ExpireVerifications(ctx context.Context) (int64, error) {
	now := db.txNow().UnixMilli()
	tag, err := db.pool.Exec(ctx, `
		UPDATE verifications SET status = 'expired', code_hash = NULL, updated_at = $1
		WHERE status = 'pending' AND expires_at <= $1
	`, now)
	if err != nil {
		return 0, fmt.Errorf("cannot expire verifications: %w", err)
	}
	return tag.RowsAffected(), nil
}

// PurgeVerificationCounters deletes the send and failure records older than
// before; they only serve the sliding windows of the limits.
func (db *DB) PurgeVerificationCounters(ctx context.Context, before time.Time) error {
	err := db.update(ctx, "purge", func(tx *tx) error {
		for _, q := range []string{
			`DELETE FROM verification_sends WHERE at < $1`,
			`DELETE FROM check_failures WHERE at < $1`,
		} {
			if _, err := tx.Exec(ctx, q, before.UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot purge verification counters: %w", err)
	}
	return nil
}

// findVerification returns the first verification matching where (a
// condition on "v", optionally with ORDER BY, LIMIT and a locking clause),
// with the status of its newest SMS. The message id is the one written on
// the verification or, since the SMS is queued in a transaction of its own,
// the newest message that names the verification.
func findVerification(ctx context.Context, q querier, where string, args ...any) (*simgate.Verification, simgate.MessageStatus, error) {
	row := q.QueryRow(ctx, `
		SELECT v.id, v.to_number, v.status, v.channel, v.call_to, v.call_modem, v.code_hash, v.code_length, v.locale,
		       v.app_name, v.reference, v.attempts, v.max_attempts, v.send_count, v.api_key_id, v.expires_at, v.created_at,
		       v.updated_at, v.approved_at, v.service_id, m.id, m.status
		FROM verifications v
		LEFT JOIN messages m ON m.id = COALESCE(v.message_id, (
			SELECT id FROM messages WHERE verification_id = v.id ORDER BY created_at DESC, rowid DESC LIMIT 1))
		WHERE `+where, args...)
	var v simgate.Verification
	var status, channel string
	var apiKeyID, msgID, msgStatus *string
	var expiresAt, createdAt, updatedAt int64
	var approvedAt *int64
	if err := row.Scan(&v.ID, &v.To, &status, &channel, &v.CallTo, &v.CallModem, &v.CodeHash, &v.CodeLength, &v.Locale, &v.AppName, &v.Reference,
		&v.Attempts, &v.MaxAttempts, &v.SendCount, &apiKeyID, &expiresAt, &createdAt,
		&updatedAt, &approvedAt, &v.ServiceID, &msgID, &msgStatus); errors.Is(err, pgx.ErrNoRows) {
		return nil, "", simgate.Errorf(simgate.CodeNotFound, "verification not found")
	} else if err != nil {
		return nil, "", fmt.Errorf("cannot find verification: %w", err)
	}
	v.Status, v.Channel = simgate.VerificationStatus(status), simgate.VerificationChannel(channel)
	v.APIKeyID, v.MessageID = deref(apiKeyID), deref(msgID)
	v.ExpiresAt = time.UnixMilli(expiresAt).UTC()
	v.CreatedAt = time.UnixMilli(createdAt).UTC()
	v.UpdatedAt = time.UnixMilli(updatedAt).UTC()
	v.ApprovedAt = fromMillis(approvedAt)
	return &v, simgate.MessageStatus(deref(msgStatus)), nil
}
