package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/simgate/simgate"
)

// FailureWindow is the period over which failed checks of one number are
// counted against the failure cap: NIST SP 800-63B §5.2.2 limits consecutive
// failed attempts on one account, and a day is the period its guidance uses.
const FailureWindow = 24 * time.Hour

// rateLimited is a refusal by the verification service's limits, retried
// no sooner than in a second.
func rateLimited(after time.Duration, format string, args ...any) error {
	return simgate.RateLimited("", max(after, time.Second), format, args...)
}

// StartVerification sends a code to v.To, in one write transaction: it
// refuses when the number reached failureCap failed checks within
// FailureWindow or maxSends sends within window (a *simgate.RateLimitError, and an
// alert the first time the send limit trips); otherwise, when the number has
// a pending, unexpired verification, it takes that one over (the resend
// case: v gets its id, creation time and attempts; its code hash, expiry,
// length, locale and app name are replaced, its reference only when v has
// one) and reports resent; else it creates v with a new id. Either way it
// counts a send. hash returns the code hash for the verification id it is
// given; it runs inside the transaction and must not block.
//
// When message is not nil, the verification's SMS is stored in the same
// transaction, queued like CreateMessage does: message is given the
// verification (its ID and final fields) and returns the prepared message
// (see queue.Dispatcher.Prepare), or an error that undoes everything. On a
// resend, SMS of the verification that are still queued are canceled
// first: they carry the replaced code.
func (db *DB) StartVerification(ctx context.Context, v *simgate.Verification, hash func(id string) []byte, message func(v *simgate.Verification) (*simgate.Message, error), maxSends int, window time.Duration, failureCap int) (resent bool, err error) {
	if v.To == "" {
		return false, simgate.Errorf(simgate.CodeInvalid, "verification has no number")
	} else if v.ExpiresAt.IsZero() {
		return false, simgate.Errorf(simgate.CodeInvalid, "verification has no expiry")
	}
	tx, err := db.beginTx(ctx)
	if err != nil {
		return false, fmt.Errorf("cannot start verification: %w", err)
	}
	defer tx.Rollback()

	if resent, err = startVerification(ctx, tx, v, hash, maxSends, window, failureCap); err != nil {
		var rl *simgate.RateLimitError
		if errors.As(err, &rl) {
			// The alert written with the refusal must survive it.
			if cerr := tx.Commit(); cerr != nil {
				return false, fmt.Errorf("cannot start verification: %w", cerr)
			}
		}
		return false, err
	}
	if message != nil {
		m, err := message(v)
		if err != nil {
			return false, err
		}
		if resent {
			if err := cancelQueuedOf(ctx, tx, v.ID, "replaced by a resend with a new code"); err != nil {
				return false, err
			}
		}
		if err := createMessage(ctx, tx, m, nil); err != nil {
			return false, err
		}
		v.MessageID = m.ID
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("cannot start verification: %w", err)
	}
	return resent, nil
}

// CheckVerification checks a code against the verification with the given
// id, or when id is empty against the newest pending verification of the
// number to, in one write transaction. match reports whether the code fits
// the stored hash of the verification id it is given; it runs inside the
// transaction and must not block.
//
// A pending verification past its expiry becomes expired, and one whose
// last SMS failed becomes failed; neither is compared. Otherwise a match
// approves it and erases its hash; a mismatch counts an attempt and a
// failure of the number, and the attempt that reaches MaxAttempts makes it
// max_attempts_reached (with an alert). changed reports whether this call
// moved the verification out of pending; failures is the number's failed
// checks within FailureWindow after this call. It returns a CodeNotFound
// error when there is no such verification, and a *simgate.RateLimitError, without
// comparing, when the number reached failureCap.
func (db *DB) CheckVerification(ctx context.Context, id, to string, match func(id string, hash []byte) bool, failureCap int) (v *simgate.Verification, changed bool, failures int, err error) {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return nil, false, 0, fmt.Errorf("cannot check verification: %w", err)
	}
	defer tx.Rollback()

	if v, changed, failures, err = checkVerification(ctx, tx, id, to, match, failureCap); err != nil {
		return nil, false, 0, err
	}
	if err := tx.Commit(); err != nil {
		return nil, false, 0, fmt.Errorf("cannot check verification: %w", err)
	}
	return v, changed, failures, nil
}

// GetVerification returns the verification with the given id, without its
// code hash. A pending verification past its expiry is returned as expired,
// and one whose last SMS failed as failed, before a check or a sweep writes
// that down. It returns a CodeNotFound error when there is none.
func (db *DB) GetVerification(ctx context.Context, id string) (*simgate.Verification, error) {
	tx, err := db.beginReadTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot get verification: %w", err)
	}
	defer tx.Rollback()

	v, msgStatus, err := findVerification(ctx, tx, `v.id = ?`, id)
	if err != nil {
		return nil, err
	}
	if v.Status == simgate.VerificationPending {
		switch {
		case !tx.now.Before(v.ExpiresAt):
			v.Status = simgate.VerificationExpired
		case msgStatus == simgate.StatusFailed:
			v.Status = simgate.VerificationFailed
		}
	}
	v.CodeHash = nil
	return v, nil
}

// CancelVerification cancels a pending verification and erases its hash. It
// returns a CodeNotFound error when there is none and a CodeConflict error
// when it is no longer pending (an expired one is marked expired first).
func (db *DB) CancelVerification(ctx context.Context, id string) (*simgate.Verification, error) {
	return db.endVerification(ctx, id, simgate.VerificationCanceled)
}

func (db *DB) endVerification(ctx context.Context, id string, status simgate.VerificationStatus) (*simgate.Verification, error) {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot end verification: %w", err)
	}
	defer tx.Rollback()

	v, _, err := findVerification(ctx, tx, `v.id = ?`, id)
	if err != nil {
		return nil, err
	}
	if v.Status == simgate.VerificationPending && !tx.now.Before(v.ExpiresAt) {
		if err := setVerificationStatus(ctx, tx, v, simgate.VerificationExpired); err != nil {
			return nil, err
		}
		if err := tx.Commit(); err != nil {
			return nil, fmt.Errorf("cannot end verification: %w", err)
		}
		return nil, simgate.Errorf(simgate.CodeConflict, "verification %s is %s", v.ID, v.Status)
	}
	if v.Status != simgate.VerificationPending {
		return nil, simgate.Errorf(simgate.CodeConflict, "verification %s is %s", v.ID, v.Status)
	}
	if err := setVerificationStatus(ctx, tx, v, status); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("cannot end verification: %w", err)
	}
	return v, nil
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

func startVerification(ctx context.Context, tx *tx, v *simgate.Verification, hash func(id string) []byte, maxSends int, window time.Duration, failureCap int) (bool, error) {
	now := tx.now.UnixMilli()

	if failureCap > 0 {
		n, oldest, err := countSince(ctx, tx, "check_failures", v.To, tx.now.Add(-FailureWindow))
		if err != nil {
			return false, err
		} else if n >= failureCap {
			return false, rateLimited(oldest.Add(FailureWindow).Sub(tx.now),
				"too many failed checks for this number; try again later")
		}
	}
	if maxSends > 0 {
		n, oldest, err := countSince(ctx, tx, "verification_sends", v.To, tx.now.Add(-window))
		if err != nil {
			return false, err
		} else if n >= maxSends {
			// One alert per window per number, however often the limit is hit.
			if err := createAlertOnce(ctx, tx, simgate.AlertSendLimit, v.To,
				fmt.Sprintf("%d verification SMS within %s", n, window), window); err != nil {
				return false, err
			}
			return false, rateLimited(oldest.Add(window).Sub(tx.now),
				"at most %d verification SMS per number within %s; try again later", maxSends, window)
		}
	}

	cur, _, err := findVerification(ctx, tx, `v.to_number = ? AND v.status = 'pending' ORDER BY v.created_at DESC, v.id DESC LIMIT 1`, v.To)
	if err != nil && simgate.ErrorCode(err) != simgate.CodeNotFound {
		return false, err
	}
	if cur != nil && !tx.now.Before(cur.ExpiresAt) {
		if err := setVerificationStatus(ctx, tx, cur, simgate.VerificationExpired); err != nil {
			return false, err
		}
		cur = nil
	}

	resent := cur != nil
	if resent {
		if v.Reference == "" {
			v.Reference = cur.Reference
		}
		v.ID, v.CreatedAt, v.Attempts, v.MaxAttempts = cur.ID, cur.CreatedAt, cur.Attempts, cur.MaxAttempts
		if v.APIKeyID == "" {
			v.APIKeyID = cur.APIKeyID
		}
		v.CodeHash = hash(v.ID)
		if _, err := tx.ExecContext(ctx, `
			UPDATE verifications
			SET code_hash = ?, code_length = ?, locale = ?, app_name = ?, reference = ?,
			    send_count = send_count + 1, expires_at = ?, updated_at = ?
			WHERE id = ?
		`, v.CodeHash, v.CodeLength, v.Locale, v.AppName, v.Reference, v.ExpiresAt.UnixMilli(), now, v.ID); err != nil {
			return false, fmt.Errorf("cannot resend verification: %w", err)
		}
		v.SendCount = cur.SendCount + 1
	} else {
		if v.MaxAttempts < 1 {
			return false, simgate.Errorf(simgate.CodeInvalid, "verification max attempts must be at least 1")
		}
		v.ID = simgate.NewID("ver", tx.now)
		v.CodeHash = hash(v.ID)
		v.Attempts, v.SendCount, v.CreatedAt = 0, 1, tx.now
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO verifications (id, to_number, status, code_hash, code_length, locale, app_name, reference,
			                           max_attempts, send_count, api_key_id, expires_at, created_at, updated_at)
			VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
		`, v.ID, v.To, v.CodeHash, v.CodeLength, v.Locale, v.AppName, v.Reference, v.MaxAttempts,
			nullString(v.APIKeyID), v.ExpiresAt.UnixMilli(), now, now); err != nil {
			return false, fmt.Errorf("cannot create verification: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO verification_sends (number, at) VALUES (?, ?)`, v.To, now); err != nil {
		return false, fmt.Errorf("cannot count verification send: %w", err)
	}
	v.Status, v.UpdatedAt, v.ApprovedAt = simgate.VerificationPending, tx.now, time.Time{}
	v.ExpiresAt = v.ExpiresAt.UTC().Truncate(time.Millisecond)
	return resent, nil
}

// cancelQueuedOf cancels the messages of a verification that no modem was
// asked to send yet.
func cancelQueuedOf(ctx context.Context, tx *tx, verificationID, reason string) error {
	rows, err := tx.QueryContext(ctx, `
		SELECT id FROM messages WHERE verification_id = ? AND status IN ('accepted', 'queued')
	`, verificationID)
	if err != nil {
		return fmt.Errorf("cannot find queued messages: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("cannot find queued messages: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot find queued messages: %w", err)
	}
	for _, id := range ids {
		if err := endUnsent(ctx, tx, id, simgate.StatusCanceled, reason); err != nil {
			return err
		}
	}
	return nil
}

func checkVerification(ctx context.Context, tx *tx, id, to string, match func(id string, hash []byte) bool, failureCap int) (*simgate.Verification, bool, int, error) {
	var v *simgate.Verification
	var msgStatus simgate.MessageStatus
	var err error
	switch {
	case id != "":
		v, msgStatus, err = findVerification(ctx, tx, `v.id = ?`, id)
	case to != "":
		v, msgStatus, err = findVerification(ctx, tx, `v.to_number = ? AND v.status = 'pending' ORDER BY v.created_at DESC, v.id DESC LIMIT 1`, to)
		if simgate.ErrorCode(err) == simgate.CodeNotFound {
			err = simgate.Errorf(simgate.CodeNotFound, "no pending verification for this number")
		}
	default:
		err = simgate.Errorf(simgate.CodeInvalid, "give a verification id or a number")
	}
	if err != nil {
		return nil, false, 0, err
	}
	defer func() { v.CodeHash = nil }()

	if v.Status != simgate.VerificationPending {
		return v, false, 0, nil
	}
	switch {
	case !tx.now.Before(v.ExpiresAt):
		return v, true, 0, setVerificationStatus(ctx, tx, v, simgate.VerificationExpired)
	case msgStatus == simgate.StatusFailed:
		return v, true, 0, setVerificationStatus(ctx, tx, v, simgate.VerificationFailed)
	}

	failures, oldest, err := countSince(ctx, tx, "check_failures", v.To, tx.now.Add(-FailureWindow))
	if err != nil {
		return nil, false, 0, err
	}
	if failureCap > 0 && failures >= failureCap {
		return nil, false, failures, rateLimited(oldest.Add(FailureWindow).Sub(tx.now),
			"too many failed checks for this number; try again later")
	}

	if match(v.ID, v.CodeHash) {
		v.ApprovedAt = tx.now
		return v, true, failures, setVerificationStatus(ctx, tx, v, simgate.VerificationApproved)
	}

	now := tx.now.UnixMilli()
	if _, err := tx.ExecContext(ctx, `INSERT INTO check_failures (number, at) VALUES (?, ?)`, v.To, now); err != nil {
		return nil, false, 0, fmt.Errorf("cannot count failed check: %w", err)
	}
	failures++
	if failureCap > 0 && failures == failureCap {
		if err := createAlert(ctx, tx, simgate.AlertFailureCap, v.To,
			fmt.Sprintf("%d failed checks within %s", failures, FailureWindow)); err != nil {
			return nil, false, 0, err
		}
	}
	v.Attempts++
	if v.Attempts >= v.MaxAttempts {
		if err := createAlert(ctx, tx, simgate.AlertMaxAttempts, v.To, "verification "+v.ID); err != nil {
			return nil, false, 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE verifications SET attempts = ? WHERE id = ?`, v.Attempts, v.ID); err != nil {
			return nil, false, 0, fmt.Errorf("cannot count check attempt: %w", err)
		}
		return v, true, failures, setVerificationStatus(ctx, tx, v, simgate.VerificationMaxAttemptsReached)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE verifications SET attempts = ?, updated_at = ? WHERE id = ?`, v.Attempts, now, v.ID); err != nil {
		return nil, false, 0, fmt.Errorf("cannot count check attempt: %w", err)
	}
	v.UpdatedAt = tx.now
	return v, false, failures, nil
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
		SELECT v.id, v.to_number, v.status, v.code_hash, v.code_length, v.locale, v.app_name, v.reference,
		       v.attempts, v.max_attempts, v.send_count, v.api_key_id, v.expires_at, v.created_at,
		       v.updated_at, v.approved_at, m.id, m.status
		FROM verifications v
		LEFT JOIN messages m ON m.id = COALESCE(v.message_id, (
			SELECT id FROM messages WHERE verification_id = v.id ORDER BY created_at DESC, rowid DESC LIMIT 1))
		WHERE `+where, args...)
	var v simgate.Verification
	var status string
	var apiKeyID, msgID, msgStatus sql.NullString
	var expiresAt, createdAt, updatedAt int64
	var approvedAt sql.NullInt64
	if err := row.Scan(&v.ID, &v.To, &status, &v.CodeHash, &v.CodeLength, &v.Locale, &v.AppName, &v.Reference,
		&v.Attempts, &v.MaxAttempts, &v.SendCount, &apiKeyID, &expiresAt, &createdAt,
		&updatedAt, &approvedAt, &msgID, &msgStatus); errors.Is(err, sql.ErrNoRows) {
		return nil, "", simgate.Errorf(simgate.CodeNotFound, "verification not found")
	} else if err != nil {
		return nil, "", fmt.Errorf("cannot find verification: %w", err)
	}
	v.Status = simgate.VerificationStatus(status)
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
