package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/simgate/simgate"
)

// CreateConsoleSession stores an admin console session: the SHA-256 of its
// random token (the token itself stays in the browser's cookie), the API key
// that logged in, its CSRF token, and its expiry ttl from now. It deletes
// expired sessions in the same transaction, which keeps the table small.
func (db *DB) CreateConsoleSession(ctx context.Context, tokenHash []byte, apiKeyID, csrf string, ttl time.Duration) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot create console session: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at <= ?`, tx.now.UnixMilli()); err != nil {
		return fmt.Errorf("cannot create console session: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO console_sessions (token_hash, api_key_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
	`, tokenHash, apiKeyID, csrf, tx.now.UnixMilli(), tx.now.Add(ttl).UnixMilli()); err != nil {
		return fmt.Errorf("cannot create console session: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot create console session: %w", err)
	}
	return nil
}

// FindConsoleSession returns the API key id and CSRF token of the session
// whose token has the SHA-256 tokenHash. It returns a CodeNotFound error when
// there is none, when it expired, and when its API key was revoked.
func (db *DB) FindConsoleSession(ctx context.Context, tokenHash []byte) (apiKeyID, csrf string, err error) {
	err = db.reader.QueryRowContext(ctx, `
		SELECT s.api_key_id, s.csrf
		FROM console_sessions s JOIN api_keys k ON k.id = s.api_key_id
		WHERE s.token_hash = ? AND s.expires_at > ? AND k.revoked_at IS NULL
	`, tokenHash, db.now().UnixMilli()).Scan(&apiKeyID, &csrf)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", simgate.Errorf(simgate.CodeNotFound, "no such session")
	} else if err != nil {
		return "", "", fmt.Errorf("cannot find console session: %w", err)
	}
	return apiKeyID, csrf, nil
}

// DeleteConsoleSession ends a session (logout). A missing one is not an error.
func (db *DB) DeleteConsoleSession(ctx context.Context, tokenHash []byte) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot delete console session: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE token_hash = ?`, tokenHash); err != nil {
		return fmt.Errorf("cannot delete console session: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot delete console session: %w", err)
	}
	return nil
}

// RecentVerifications returns up to limit verifications, newest first,
// without their code hashes (a limit of 0 or less means 50).
func (db *DB) RecentVerifications(ctx context.Context, limit int) ([]*simgate.Verification, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := db.reader.QueryContext(ctx, `
		SELECT id, to_number, status, code_length, locale, app_name, reference, attempts, max_attempts,
		       send_count, message_id, api_key_id, expires_at, created_at, updated_at, approved_at, service_id, channel, call_to
		FROM verifications ORDER BY created_at DESC, id DESC LIMIT ?
	`, min(limit, 1000))
	if err != nil {
		return nil, fmt.Errorf("cannot list verifications: %w", err)
	}
	defer rows.Close()
	vs := []*simgate.Verification{}
	for rows.Next() {
		var v simgate.Verification
		var status, channel string
		var msgID, keyID sql.NullString
		var expiresAt, createdAt, updatedAt int64
		var approvedAt sql.NullInt64
		if err := rows.Scan(&v.ID, &v.To, &status, &v.CodeLength, &v.Locale, &v.AppName, &v.Reference, &v.Attempts,
			&v.MaxAttempts, &v.SendCount, &msgID, &keyID, &expiresAt, &createdAt, &updatedAt, &approvedAt, &v.ServiceID,
			&channel, &v.CallTo); err != nil {
			return nil, fmt.Errorf("cannot list verifications: %w", err)
		}
		v.Status, v.Channel = simgate.VerificationStatus(status), simgate.VerificationChannel(channel)
		v.MessageID, v.APIKeyID = msgID.String, keyID.String
		v.ExpiresAt = time.UnixMilli(expiresAt).UTC()
		v.CreatedAt = time.UnixMilli(createdAt).UTC()
		v.UpdatedAt = time.UnixMilli(updatedAt).UTC()
		v.ApprovedAt = fromMillis(approvedAt)
		vs = append(vs, &v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list verifications: %w", err)
	}
	return vs, nil
}

// RecentInboundMessages returns up to limit received SMS, newest first (a
// limit of 0 or less means 50).
func (db *DB) RecentInboundMessages(ctx context.Context, limit int) ([]*simgate.InboundMessage, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := db.reader.QueryContext(ctx, `
		SELECT `+inboundColumns+`
		FROM inbound_messages ORDER BY id DESC LIMIT ?
	`, min(limit, MaxInboundLimit))
	if err != nil {
		return nil, fmt.Errorf("cannot list inbound messages: %w", err)
	}
	return scanInboundMessages(rows)
}
