package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/simgate/simgate"
)

// CreateAPIKey stores k. It sets k.ID when empty and k.CreatedAt to the
// current time. It returns a CodeInvalid error when k.Hash is not a SHA-256,
// k has no scope, or its service limit is not one it may have
// (simgate.APIKey.StoredServices) or names a service that does not exist,
// and a CodeConflict error when a key with the same hash or id exists.
func (db *DB) CreateAPIKey(ctx context.Context, k *simgate.APIKey) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot create api key: %w", err)
	}
	defer tx.Rollback()

	if err := createAPIKey(ctx, tx, k); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot create api key: %w", err)
	}
	return nil
}

// FindAPIKeyByHash returns the unrevoked key whose SHA-256 is hash. It
// returns a CodeNotFound error when there is none, also when the key was
// revoked, so that authentication cannot forget to check.
func (db *DB) FindAPIKeyByHash(ctx context.Context, hash []byte) (*simgate.APIKey, error) {
	tx, err := db.beginReadTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot find api key: %w", err)
	}
	defer tx.Rollback()

	keys, err := findAPIKeys(ctx, tx, `WHERE hash = ? AND revoked_at IS NULL`, hash)
	if err != nil {
		return nil, err
	} else if len(keys) == 0 {
		// Never put the hash in the message: it identifies the key.
		return nil, simgate.Errorf(simgate.CodeNotFound, "api key not found")
	}
	return keys[0], nil
}

// ListAPIKeys returns every key, revoked ones included, oldest first.
func (db *DB) ListAPIKeys(ctx context.Context) ([]*simgate.APIKey, error) {
	tx, err := db.beginReadTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot list api keys: %w", err)
	}
	defer tx.Rollback()
	return findAPIKeys(ctx, tx, ``)
}

// RevokeAPIKey revokes the key with the given id. Revoking a revoked key
// keeps its first revocation time. It returns a CodeNotFound error when there
// is no such key.
func (db *DB) RevokeAPIKey(ctx context.Context, id string) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot revoke api key: %w", err)
	}
	defer tx.Rollback()

	if err := revokeAPIKey(ctx, tx, id); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot revoke api key: %w", err)
	}
	return nil
}

// TouchAPIKey records that the key with the given id was used now. It is
// a write, so callers do it at most once in a while per key rather than on
// every request. A missing key is not an error: it may have been deleted.
func (db *DB) TouchAPIKey(ctx context.Context, id string) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot touch api key: %w", err)
	}
	defer tx.Rollback()

	if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, tx.now.UnixMilli(), id); err != nil {
		return fmt.Errorf("cannot touch api key: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot touch api key: %w", err)
	}
	return nil
}

func createAPIKey(ctx context.Context, tx *tx, k *simgate.APIKey) error {
	scopes, err := k.StoredScopes()
	if err != nil {
		return err
	}
	services, err := k.StoredServices()
	if err != nil {
		return err
	}
	for i, id := range k.Services {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM services WHERE id = ?`, id).Scan(&n); err != nil {
			return fmt.Errorf("cannot create api key: %w", err)
		} else if n == 0 {
			return simgate.Errorf(simgate.CodeInvalid, "services[%d]: service %s does not exist", i, id)
		}
	}

	id := k.ID
	if id == "" {
		id = simgate.NewID("key", tx.now)
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO api_keys (id, name, prefix, hash, scopes, services, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
	`, id, k.Name, k.Prefix, k.Hash, scopes, services, tx.now.UnixMilli()); isUniqueViolation(err) {
		return simgate.Errorf(simgate.CodeConflict, "api key already exists")
	} else if err != nil {
		return fmt.Errorf("cannot create api key: %w", err)
	}

	k.ID, k.CreatedAt, k.RevokedAt, k.LastUsedAt = id, tx.now, time.Time{}, time.Time{}
	return nil
}

func revokeAPIKey(ctx context.Context, tx *tx, id string) error {
	res, err := tx.ExecContext(ctx, `
		UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?
	`, tx.now.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("cannot revoke api key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("cannot revoke api key: %w", err)
	} else if n == 0 {
		return notFound("api key", id)
	}
	return nil
}

// findAPIKeys returns the keys matching where (a WHERE clause, or empty).
func findAPIKeys(ctx context.Context, tx *tx, where string, args ...any) ([]*simgate.APIKey, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT id, name, prefix, hash, scopes, services, created_at, revoked_at, last_used_at
		FROM api_keys `+where+`
		ORDER BY created_at, id
	`, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot find api keys: %w", err)
	}
	defer rows.Close()

	keys := []*simgate.APIKey{}
	for rows.Next() {
		var k simgate.APIKey
		var scopes, services string
		var createdAt int64
		var revokedAt, lastUsedAt sql.NullInt64
		if err := rows.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &scopes, &services, &createdAt, &revokedAt, &lastUsedAt); err != nil {
			return nil, fmt.Errorf("cannot find api keys: %w", err)
		}
		k.Services = simgate.ParseServices(services)
		if k.Scopes, err = simgate.ParseScopes(scopes); err != nil {
			return nil, fmt.Errorf("cannot find api keys: key %s: %w", k.ID, err)
		}
		k.CreatedAt = fromMillis(sql.NullInt64{Int64: createdAt, Valid: true})
		k.RevokedAt = fromMillis(revokedAt)
		k.LastUsedAt = fromMillis(lastUsedAt)
		keys = append(keys, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot find api keys: %w", err)
	}
	return keys, nil
}
