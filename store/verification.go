package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/simgate/simgate"
)

// UpdateVerifications runs fn in one write transaction, which it commits
// when fn returns nil and rolls back otherwise. The verification service
// (verify) holds the rules; fn does its reads and writes through the
// simgate.VerificationTx it is given, which must not be used after fn
// returns. fn must not block on anything but the transaction.
func (db *DB) UpdateVerifications(ctx context.Context, fn func(simgate.VerificationTx) error) error {
	return db.update(ctx, "verification", func(tx *tx) error { return fn(verificationTx{tx}) })
}

// verificationTx is the simgate.VerificationTx of a write transaction.
type verificationTx struct{ tx *tx }

func (t verificationTx) Now() time.Time { return t.tx.now }

func (t verificationTx) FindVerification(ctx context.Context, id string) (*simgate.Verification, simgate.MessageStatus, error) {
	return findVerification(ctx, t.tx, `v.id = ?`, id)
}

func (t verificationTx) PendingVerification(ctx context.Context, serviceID, number string) (*simgate.Verification, simgate.MessageStatus, error) {
	return findVerification(ctx, t.tx, `v.service_id = ? AND v.to_number = ? AND v.status = 'pending'
		ORDER BY v.created_at DESC, v.id DESC LIMIT 1`, serviceID, number)
}

func (t verificationTx) SpentVerification(ctx context.Context, serviceID, number string) (*simgate.Verification, error) {
	v, _, err := findVerification(ctx, t.tx, `v.service_id = ? AND v.to_number = ? AND v.status = 'max_attempts_reached'
		AND v.expires_at > ? ORDER BY v.created_at DESC, v.id DESC LIMIT 1`, serviceID, number, t.tx.now.UnixMilli())
	return v, err
}

func (t verificationTx) PendingCallVerification(ctx context.Context, number, modemID string) (*simgate.Verification, error) {
	v, _, err := findVerification(ctx, t.tx, `v.to_number = ? AND v.call_modem = ? AND v.status = 'pending' AND v.channel = 'missed_call'
		ORDER BY v.created_at DESC, v.id DESC LIMIT 1`, number, modemID)
	return v, err
}

func (t verificationTx) CreateVerification(ctx context.Context, v *simgate.Verification) error {
	if err := v.CheckCreate(); err != nil {
		return err
	}
	now := t.tx.now.UnixMilli()
	if _, err := t.tx.ExecContext(ctx, `
		INSERT INTO verifications (id, to_number, status, channel, call_to, call_modem, code_hash, code_length, locale,
		                           app_name, reference, max_attempts, send_count, api_key_id, expires_at, created_at,
		                           updated_at, service_id)
		VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)
	`, v.ID, v.To, v.Channel, v.CallTo, v.CallModem, v.CodeHash, v.CodeLength, v.Locale, v.AppName, v.Reference, v.MaxAttempts,
		nullString(v.APIKeyID), v.ExpiresAt.UnixMilli(), now, now, v.ServiceID); err != nil {
		return fmt.Errorf("cannot create verification: %w", err)
	}
	v.Status, v.Attempts, v.SendCount = simgate.VerificationPending, 0, 1
	v.CreatedAt, v.UpdatedAt, v.ApprovedAt = t.tx.now, t.tx.now, time.Time{}
	v.ExpiresAt = v.ExpiresAt.UTC().Truncate(time.Millisecond)
	return nil
}

func (t verificationTx) ResendVerification(ctx context.Context, v *simgate.Verification) error {
	res, err := t.tx.ExecContext(ctx, `
		UPDATE verifications
		SET code_hash = ?, code_length = ?, locale = ?, app_name = ?, reference = ?, call_to = ?, call_modem = ?,
		    send_count = send_count + 1, expires_at = ?, updated_at = ?
		WHERE id = ?
	`, v.CodeHash, v.CodeLength, v.Locale, v.AppName, v.Reference, v.CallTo, v.CallModem, v.ExpiresAt.UnixMilli(),
		t.tx.now.UnixMilli(), v.ID)
	if err != nil {
		return fmt.Errorf("cannot resend verification: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("cannot resend verification: %w", err)
	} else if n == 0 {
		return notFound("verification", v.ID)
	}
	v.UpdatedAt = t.tx.now
	v.ExpiresAt = v.ExpiresAt.UTC().Truncate(time.Millisecond)
	return nil
}

func (t verificationTx) SetVerificationAttempts(ctx context.Context, v *simgate.Verification) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE verifications SET attempts = ?, updated_at = ? WHERE id = ?`,
		v.Attempts, t.tx.now.UnixMilli(), v.ID); err != nil {
		return fmt.Errorf("cannot count check attempt: %w", err)
	}
	v.UpdatedAt = t.tx.now
	return nil
}

func (t verificationTx) SetVerificationStatus(ctx context.Context, v *simgate.Verification, status simgate.VerificationStatus) error {
	return setVerificationStatus(ctx, t.tx, v, status)
}

func (t verificationTx) CountSends(ctx context.Context, number string, since time.Time) (int, time.Time, error) {
	return countSince(ctx, t.tx, "verification_sends", number, since)
}

func (t verificationTx) CountFailures(ctx context.Context, number string, since time.Time) (int, time.Time, error) {
	return countSince(ctx, t.tx, "check_failures", number, since)
}

func (t verificationTx) AddSend(ctx context.Context, number string) error {
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO verification_sends (number, at) VALUES (?, ?)`, number, t.tx.now.UnixMilli()); err != nil {
		return fmt.Errorf("cannot count verification send: %w", err)
	}
	return nil
}

func (t verificationTx) AddFailure(ctx context.Context, number string) error {
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO check_failures (number, at) VALUES (?, ?)`, number, t.tx.now.UnixMilli()); err != nil {
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

func (t verificationTx) CancelQueuedMessages(ctx context.Context, verificationID, reason string) error {
	return cancelQueuedOf(ctx, t.tx, verificationID, reason)
}

// GetVerification returns the verification with the given id, without its
// code hash, and the status of its newest SMS, as stored: the verification
// service decides what an expired or undeliverable pending one is. It
// returns a CodeNotFound error when there is none.
func (db *DB) GetVerification(ctx context.Context, id string) (*simgate.Verification, simgate.MessageStatus, error) {
	tx, err := db.beginReadTx(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("cannot get verification: %w", err)
	}
	defer tx.Rollback()

	v, msgStatus, err := findVerification(ctx, tx, `v.id = ?`, id)
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
	return db.execAlone(ctx, "expire verifications", func(tx *tx) (sql.Result, error) {
		return tx.ExecContext(ctx, `
			UPDATE verifications SET status = 'expired', code_hash = NULL, updated_at = ?
			WHERE status = 'pending' AND expires_at <= ?
		`, tx.now.UnixMilli(), tx.now.UnixMilli())
	})
}

// PurgeVerificationCounters deletes the send and failure records older than
// before; they only serve the sliding windows of the limits.
func (db *DB) PurgeVerificationCounters(ctx context.Context, before time.Time) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot purge verification counters: %w", err)
	}
	defer tx.Rollback()

	for _, q := range []string{
		`DELETE FROM verification_sends WHERE at < ?`,
		`DELETE FROM check_failures WHERE at < ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, before.UnixMilli()); err != nil {
			return fmt.Errorf("cannot purge verification counters: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot purge verification counters: %w", err)
	}
	return nil
}

// cancelQueuedOf cancels the messages of a verification that no modem was
// asked to send yet: they and their parts become canceled, with reason and
// an event.
func cancelQueuedOf(ctx context.Context, tx *tx, verificationID, reason string) error {
	rows, err := tx.QueryContext(ctx, `
		SELECT id FROM messages WHERE verification_id = ? AND status IN ('accepted', 'queued')
	`, verificationID)
	if err != nil {
		return fmt.Errorf("cannot find queued messages: %w", err)
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return fmt.Errorf("cannot find queued messages: %w", err)
	}
	for _, id := range ids {
		if err := setMessageStatus(ctx, tx, id, simgate.StatusCanceled, reason); err != nil {
			return err
		}
		if err := setPartsStatus(ctx, tx, id, 1, 0, simgate.StatusCanceled, "", tx.now); err != nil {
			return err
		}
		if err := addEvent(ctx, tx, id, simgate.StatusCanceled, reason); err != nil {
			return err
		}
	}
	return nil
}

// setVerificationStatus moves a pending verification to status and erases
// its hash. The WHERE status = 'pending' makes a second transition a no-op
// that reports a conflict, so no verification is approved twice.
func setVerificationStatus(ctx context.Context, tx *tx, v *simgate.Verification, status simgate.VerificationStatus) error {
	res, err := tx.ExecContext(ctx, `
		UPDATE verifications SET status = ?, code_hash = NULL, updated_at = ?, approved_at = ?
		WHERE id = ? AND status = 'pending'
	`, string(status), tx.now.UnixMilli(), millis(v.ApprovedAt), v.ID)
	if err != nil {
		return fmt.Errorf("cannot update verification: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("cannot update verification: %w", err)
	} else if n == 0 {
		return simgate.Errorf(simgate.CodeConflict, "verification %s is no longer pending", v.ID)
	}
	v.Status, v.CodeHash, v.UpdatedAt = status, nil, tx.now
	return nil
}

// countSince counts the rows of table (verification_sends or check_failures)
// for number at or after since, and returns the time of the oldest of them.
func countSince(ctx context.Context, tx *tx, table, number string, since time.Time) (int, time.Time, error) {
	var n int
	var oldest sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT count(*), min(at) FROM `+table+` WHERE number = ? AND at >= ?`,
		number, since.UnixMilli()).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("cannot count %s: %w", table, err)
	}
	return n, fromMillis(oldest), nil
}

// findVerification returns the first verification matching where (a
// condition on "v", optionally with ORDER BY and LIMIT), with the status of
// its newest SMS. The message id is the one written on the verification or,
// since the SMS is queued in a transaction of its own, the newest message
// that names the verification.
func findVerification(ctx context.Context, tx *tx, where string, args ...any) (*simgate.Verification, simgate.MessageStatus, error) {
	row := tx.QueryRowContext(ctx, `
		SELECT v.id, v.to_number, v.status, v.channel, v.call_to, v.call_modem, v.code_hash, v.code_length, v.locale,
		       v.app_name, v.reference, v.attempts, v.max_attempts, v.send_count, v.api_key_id, v.expires_at, v.created_at,
		       v.updated_at, v.approved_at, v.service_id, m.id, m.status
		FROM verifications v
		LEFT JOIN messages m ON m.id = COALESCE(v.message_id, (
			SELECT id FROM messages WHERE verification_id = v.id ORDER BY created_at DESC, rowid DESC LIMIT 1))
		WHERE `+where, args...)
	var v simgate.Verification
	var status, channel string
	var apiKeyID, msgID, msgStatus sql.NullString
	var expiresAt, createdAt, updatedAt int64
	var approvedAt sql.NullInt64
	if err := row.Scan(&v.ID, &v.To, &status, &channel, &v.CallTo, &v.CallModem, &v.CodeHash, &v.CodeLength, &v.Locale, &v.AppName, &v.Reference,
		&v.Attempts, &v.MaxAttempts, &v.SendCount, &apiKeyID, &expiresAt, &createdAt,
		&updatedAt, &approvedAt, &v.ServiceID, &msgID, &msgStatus); errors.Is(err, sql.ErrNoRows) {
		return nil, "", simgate.Errorf(simgate.CodeNotFound, "verification not found")
	} else if err != nil {
		return nil, "", fmt.Errorf("cannot find verification: %w", err)
	}
	v.Status, v.Channel = simgate.VerificationStatus(status), simgate.VerificationChannel(channel)
	v.APIKeyID, v.MessageID = apiKeyID.String, msgID.String
	v.ExpiresAt = time.UnixMilli(expiresAt).UTC()
	v.CreatedAt = time.UnixMilli(createdAt).UTC()
	v.UpdatedAt = time.UnixMilli(updatedAt).UTC()
	v.ApprovedAt = fromMillis(approvedAt)
	return &v, simgate.MessageStatus(msgStatus.String), nil
}

// nullString returns nil for "" so that an optional reference is NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
