package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
)

// ReserveIdempotencyKey reads the record of key for the API key apiKeyID,
// applies the rule of simgate.DecideIdempotency for the request whose
// SHA-256 is requestHash, and writes what it says, in one transaction. It
// returns the outcome, with the stored status and body for a replay and the
// message id for a recovery.
//
// Requests with one key may race on several hosts. The transaction first
// takes an advisory lock on the key (a row lock cannot cover a key that has
// no row yet), in a statement of its own so that the read that follows
// sees what the previous holder committed: of racing requests with a new
// key one reserves it and the others find it in flight, and of retries
// past a lease one takes it over.
func (db *DB) ReserveIdempotencyKey(ctx context.Context, apiKeyID, key string, requestHash []byte, ttl, lease time.Duration) (outcome simgate.IdempotencyOutcome, status int, body []byte, messageID string, err error) {
	err = db.update(ctx, "idempotency", func(tx *tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('idempotency:' || $1 || ':' || $2, 0))`,
			apiKeyID, key); err != nil {
			return err
		}
		var rec *simgate.IdempotencyRecord
		var r simgate.IdempotencyRecord
		var code *int64
		var createdAt int64
		var msg *string
		err := tx.QueryRow(ctx, `
			SELECT request_hash, response, status_code, created_at, message_id FROM idempotency_keys
			WHERE api_key_id = $1 AND key = $2
		`, apiKeyID, key).Scan(&r.RequestHash, &r.Response, &code, &createdAt, &msg)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			r.CreatedAt = time.UnixMilli(createdAt)
			if code != nil {
				r.StatusCode = int(*code)
			}
			if msg != nil {
				r.MessageID = *msg
			}
			rec = &r
		}
		var write simgate.IdempotencyWrite
		outcome, write = simgate.DecideIdempotency(rec, requestHash, tx.now, ttl, lease)
		switch outcome {
		case simgate.IdempotencyReplay:
			status, body = r.StatusCode, r.Response
		case simgate.IdempotencyRecover:
			messageID = r.MessageID
		}
		switch write {
		case simgate.IdempotencyTakeOver:
			_, err = tx.Exec(ctx, `UPDATE idempotency_keys SET created_at = $1 WHERE api_key_id = $2 AND key = $3`,
				tx.now.UnixMilli(), apiKeyID, key)
		case simgate.IdempotencyReserve:
			_, err = tx.Exec(ctx, `
				INSERT INTO idempotency_keys (api_key_id, key, request_hash, created_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (api_key_id, key) DO UPDATE SET
					request_hash = excluded.request_hash, response = NULL, status_code = NULL, message_id = NULL,
					created_at = excluded.created_at
			`, apiKeyID, key, requestHash, tx.now.UnixMilli())
		}
		return err
	})
	if err != nil {
		return "", 0, nil, "", fmt.Errorf("cannot reserve idempotency key: %w", err)
	}
	return outcome, status, body, messageID, nil
}

// CompleteIdempotencyKey stores the response to the request that reserved
// key. It returns a CodeNotFound error when the key is not reserved.
func (db *DB) CompleteIdempotencyKey(ctx context.Context, apiKeyID, key string, status int, body []byte) error {
	tag, err := db.pool.Exec(ctx, `
		UPDATE idempotency_keys SET response = $1, status_code = $2 WHERE api_key_id = $3 AND key = $4 AND status_code IS NULL
	`, body, status, apiKeyID, key)
	if err != nil {
		return fmt.Errorf("cannot complete idempotency key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return simgate.Errorf(simgate.CodeNotFound, "idempotency key not reserved")
	}
	return nil
}

// ReleaseIdempotencyKey forgets a reserved key whose request failed, so that
// a retry with it runs again. A completed key is kept, and so is one whose
// request created a message: a retry must not create another.
func (db *DB) ReleaseIdempotencyKey(ctx context.Context, apiKeyID, key string) error {
	if _, err := db.pool.Exec(ctx, `
		DELETE FROM idempotency_keys WHERE api_key_id = $1 AND key = $2 AND status_code IS NULL AND message_id IS NULL
	`, apiKeyID, key); err != nil {
		return fmt.Errorf("cannot release idempotency key: %w", err)
	}
	return nil
}

// PurgeIdempotencyKeys deletes keys created before before and returns how
// many it deleted.
func (db *DB) PurgeIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("cannot purge idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}
