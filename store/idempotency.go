package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/simgate/simgate"
)

// ReserveIdempotencyKey reads the record of key for the API key apiKeyID,
// applies the rule of simgate.DecideIdempotency for the request whose
// SHA-256 is requestHash, and writes what it says, in one transaction. It
// returns the outcome, with the stored status and body for a replay and the
// message id for a recovery. A reservation is a lease of length lease, which
// must be longer than a request may take.
func (db *DB) ReserveIdempotencyKey(ctx context.Context, apiKeyID, key string, requestHash []byte, ttl, lease time.Duration) (outcome simgate.IdempotencyOutcome, status int, body []byte, messageID string, err error) {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return "", 0, nil, "", fmt.Errorf("cannot reserve idempotency key: %w", err)
	}
	defer tx.Rollback()

	var rec *simgate.IdempotencyRecord
	var r simgate.IdempotencyRecord
	var code sql.NullInt64
	var createdAt int64
	var msg sql.NullString
	err = tx.QueryRowContext(ctx, `
		SELECT request_hash, response, status_code, created_at, message_id FROM idempotency_keys
		WHERE api_key_id = ? AND key = ?
	`, apiKeyID, key).Scan(&r.RequestHash, &r.Response, &code, &createdAt, &msg)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return "", 0, nil, "", fmt.Errorf("cannot reserve idempotency key: %w", err)
	default:
		r.StatusCode, r.CreatedAt, r.MessageID = int(code.Int64), time.UnixMilli(createdAt), msg.String
		rec = &r
	}
	outcome, write := simgate.DecideIdempotency(rec, requestHash, tx.now, ttl, lease)
	switch write {
	case simgate.IdempotencyKeep:
		if outcome == simgate.IdempotencyReplay {
			return outcome, r.StatusCode, r.Response, "", nil
		}
		return outcome, 0, nil, "", nil
	case simgate.IdempotencyTakeOver:
		_, err = tx.ExecContext(ctx, `UPDATE idempotency_keys SET created_at = ? WHERE api_key_id = ? AND key = ?`,
			tx.now.UnixMilli(), apiKeyID, key)
	case simgate.IdempotencyReserve:
		_, err = tx.ExecContext(ctx, `
			INSERT INTO idempotency_keys (api_key_id, key, request_hash, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (api_key_id, key) DO UPDATE SET
				request_hash = excluded.request_hash, response = NULL, status_code = NULL, message_id = NULL,
				created_at = excluded.created_at
		`, apiKeyID, key, requestHash, tx.now.UnixMilli())
	}
	if err != nil {
		return "", 0, nil, "", fmt.Errorf("cannot reserve idempotency key: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return "", 0, nil, "", fmt.Errorf("cannot reserve idempotency key: %w", err)
	}
	if outcome == simgate.IdempotencyRecover {
		return outcome, 0, nil, r.MessageID, nil
	}
	return outcome, 0, nil, "", nil
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
	if _, err := tx.ExecContext(ctx, `
		UPDATE idempotency_keys SET message_id = ? WHERE api_key_id = ? AND key = ? AND status_code IS NULL
	`, id, apiKeyID, key); err != nil {
		return fmt.Errorf("cannot record message with idempotency key: %w", err)
	}
	return nil
}

// CompleteIdempotencyKey stores the response to the request that reserved
// key. It returns a CodeNotFound error when the key is not reserved.
func (db *DB) CompleteIdempotencyKey(ctx context.Context, apiKeyID, key string, status int, body []byte) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot complete idempotency key: %w", err)
	}
	defer tx.Rollback()

	res, err := tx.ExecContext(ctx, `
		UPDATE idempotency_keys SET response = ?, status_code = ? WHERE api_key_id = ? AND key = ? AND status_code IS NULL
	`, body, status, apiKeyID, key)
	if err != nil {
		return fmt.Errorf("cannot complete idempotency key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("cannot complete idempotency key: %w", err)
	} else if n == 0 {
		return simgate.Errorf(simgate.CodeNotFound, "idempotency key not reserved")
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot complete idempotency key: %w", err)
	}
	return nil
}

// ReleaseIdempotencyKey forgets a reserved key whose request failed, so that
// a retry with it runs again. A completed key is kept, and so is one whose
// request created a message: a retry must not create another.
func (db *DB) ReleaseIdempotencyKey(ctx context.Context, apiKeyID, key string) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot release idempotency key: %w", err)
	}
	defer tx.Rollback()

	if _, err := tx.ExecContext(ctx, `
		DELETE FROM idempotency_keys WHERE api_key_id = ? AND key = ? AND status_code IS NULL AND message_id IS NULL
	`, apiKeyID, key); err != nil {
		return fmt.Errorf("cannot release idempotency key: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot release idempotency key: %w", err)
	}
	return nil
}

// PurgeIdempotencyKeys deletes keys created before before and returns how
// many it deleted.
func (db *DB) PurgeIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	return db.execAlone(ctx, "purge idempotency keys", func(tx *tx) (sql.Result, error) {
		return tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at < ?`, before.UnixMilli())
	})
}
