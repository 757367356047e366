package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
)

// CreateConsoleSession stores an admin console session: the SHA-256 of its
// random token (the token itself stays in the browser's cookie), the API key
// that logged in, its CSRF token, and its expiry ttl from now. It deletes
// expired sessions in the same transaction, which keeps the table small.
func (db *DB) CreateConsoleSession(ctx context.Context, tokenHash []byte, apiKeyID, csrf string, ttl time.Duration) error {
	err := db.update(ctx, "console session", func(tx *tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE expires_at <= $1`, tx.now.UnixMilli()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO console_sessions (token_hash, api_key_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)
		`, tokenHash, apiKeyID, csrf, tx.now.UnixMilli(), tx.now.Add(ttl).UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("cannot create console session: %w", err)
	}
	return nil
}

// FindConsoleSession returns the API key id and CSRF token of the session
// whose token has the SHA-256 tokenHash. It returns a CodeNotFound error when
// there is none, when it expired, and when its API key was revoked.
func (db *DB) FindConsoleSession(ctx context.Context, tokenHash []byte) (apiKeyID, csrf string, err error) {
	err = db.pool.QueryRow(ctx, `
		SELECT s.api_key_id, s.csrf
		FROM console_sessions s JOIN api_keys k ON k.id = s.api_key_id
		WHERE s.token_hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL
	`, tokenHash, db.txNow().UnixMilli()).Scan(&apiKeyID, &csrf)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", simgate.Errorf(simgate.CodeNotFound, "no such session")
	} else if err != nil {
		return "", "", fmt.Errorf("cannot find console session: %w", err)
	}
	return apiKeyID, csrf, nil
}

// DeleteConsoleSession ends a session (logout). A missing one is not an error.
func (db *DB) DeleteConsoleSession(ctx context.Context, tokenHash []byte) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM console_sessions WHERE token_hash = $1`, tokenHash); err != nil {
		return fmt.Errorf("cannot delete console session: %w", err)
	}
	return nil
}

// PINRejected reports whether the SIM iccid rejected the PIN with
// fingerprint fp (modem.PINFingerprint).
func (db *DB) PINRejected(ctx context.Context, iccid string, fp []byte) (bool, error) {
	var rejected bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM rejected_pins WHERE iccid = $1 AND fingerprint = $2)`,
		iccid, fp).Scan(&rejected); err != nil {
		return false, fmt.Errorf("cannot look up rejected PINs: %w", err)
	}
	return rejected, nil
}

// RecordRejectedPIN remembers that the SIM iccid rejected the PIN with
// fingerprint fp.
func (db *DB) RecordRejectedPIN(ctx context.Context, iccid string, fp []byte) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO rejected_pins (iccid, fingerprint, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		iccid, fp, db.txNow().UnixMilli()); err != nil {
		return fmt.Errorf("cannot record a rejected PIN: %w", err)
	}
	return nil
}
