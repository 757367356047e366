package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
)

// Ping proves that the database takes writes, by rewriting the heartbeat
// row, and reads it back. Readiness checks use it: a server that is down,
// read-only (a standby after a failover) or full fails here.
func (db *DB) Ping(ctx context.Context) error {
	now := db.txNow().UnixMilli()
	if _, err := db.pool.Exec(ctx, `
		INSERT INTO heartbeat (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at
	`, now); err != nil {
		return simgate.Errorf(simgate.CodeUnavailable, "cannot ping database: %v", err)
	}
	var at int64
	if err := db.pool.QueryRow(ctx, `SELECT at FROM heartbeat WHERE id = 1`).Scan(&at); err != nil {
		return simgate.Errorf(simgate.CodeUnavailable, "cannot ping database: %v", err)
	}
	return nil
}

// RecentVerifications returns up to limit verifications, newest first,
// without their code hashes (a limit of 0 or less means 50).
func (db *DB) RecentVerifications(ctx context.Context, limit int) ([]*simgate.Verification, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := db.pool.Query(ctx, `
		SELECT id, to_number, status, code_length, locale, app_name, reference, attempts, max_attempts,
		       send_count, message_id, api_key_id, expires_at, created_at, updated_at, approved_at, service_id, channel, call_to
		FROM verifications ORDER BY created_at DESC, id DESC LIMIT $1
	`, min(limit, 1000))
	if err != nil {
		return nil, fmt.Errorf("cannot list verifications: %w", err)
	}
	vs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*simgate.Verification, error) {
		var v simgate.Verification
		var msgID, keyID *string
		var expiresAt, createdAt, updatedAt int64
		var approvedAt *int64
		if err := row.Scan(&v.ID, &v.To, &v.Status, &v.CodeLength, &v.Locale, &v.AppName, &v.Reference, &v.Attempts,
			&v.MaxAttempts, &v.SendCount, &msgID, &keyID, &expiresAt, &createdAt, &updatedAt, &approvedAt, &v.ServiceID,
			&v.Channel, &v.CallTo); err != nil {
			return nil, err
		}
		if msgID != nil {
			v.MessageID = *msgID
		}
		if keyID != nil {
			v.APIKeyID = *keyID
		}
		v.ExpiresAt = time.UnixMilli(expiresAt).UTC()
		v.CreatedAt = time.UnixMilli(createdAt).UTC()
		v.UpdatedAt = time.UnixMilli(updatedAt).UTC()
		v.ApprovedAt = fromMillis(approvedAt)
		return &v, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot list verifications: %w", err)
	}
	if vs == nil {
		vs = []*simgate.Verification{}
	}
	return vs, nil
}
