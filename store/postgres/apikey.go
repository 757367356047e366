package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
)

// CreateAPIKey stores k (its hash, never the key), giving it an ID when it
// has none and its creation time. It returns CodeInvalid for a malformed
// key (simgate.APIKey.StoredScopes, StoredServices) or one limited to a
// service that does not exist, and CodeConflict when the key exists.
func (db *DB) CreateAPIKey(ctx context.Context, k *simgate.APIKey) error {
	scopes, err := k.StoredScopes()
	if err != nil {
		return err
	}
	services, err := k.StoredServices()
	if err != nil {
		return err
	}
	now := db.txNow()
	id := k.ID
	if id == "" {
		id = simgate.NewID("key", now)
	}
	// Services are never deleted: one found here still exists when the
	// key is inserted.
	var missing *string
	if err := db.pool.QueryRow(ctx, `SELECT min(want) FROM unnest($1::text[]) AS want WHERE NOT EXISTS (SELECT 1 FROM services WHERE id = want)`,
		k.Services).Scan(&missing); err != nil {
		return fmt.Errorf("cannot create api key: %w", unavailable(err))
	} else if missing != nil {
		return simgate.Errorf(simgate.CodeInvalid, "services[%d]: service %s does not exist", slices.Index(k.Services, *missing), *missing)
	}
	if _, err := db.pool.Exec(ctx, `
		INSERT INTO api_keys (id, name, prefix, hash, scopes, services, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
	`, id, k.Name, k.Prefix, k.Hash, scopes, services, now.UnixMilli()); isUniqueViolation(err) {
		return simgate.Errorf(simgate.CodeConflict, "api key already exists")
	} else if err != nil {
		return fmt.Errorf("cannot create api key: %w", err)
	}
	k.ID, k.CreatedAt, k.RevokedAt, k.LastUsedAt = id, now, time.Time{}, time.Time{}
	return nil
}

// FindAPIKeyByHash returns the unrevoked key whose SHA-256 is hash. It
// returns a CodeNotFound error when there is none, also when the key was
// revoked, so that authentication cannot forget to check.
func (db *DB) FindAPIKeyByHash(ctx context.Context, hash []byte) (*simgate.APIKey, error) {
	keys, err := db.findAPIKeys(ctx, `WHERE hash = $1 AND revoked_at IS NULL`, hash)
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
	return db.findAPIKeys(ctx, ``)
}

// RevokeAPIKey revokes the key with the given id. Revoking a revoked key
// keeps its first revocation time. It returns a CodeNotFound error when there
// is no such key.
func (db *DB) RevokeAPIKey(ctx context.Context, id string) error {
	tag, err := db.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`,
		db.txNow().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("cannot revoke api key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("api key", id)
	}
	return nil
}

// TouchAPIKey records that the key id was used now.
func (db *DB) TouchAPIKey(ctx context.Context, id string) error {
	if _, err := db.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE id = $2`, db.txNow().UnixMilli(), id); err != nil {
		return fmt.Errorf("cannot touch api key: %w", err)
	}
	return nil
}

// findAPIKeys returns the keys matching where (a WHERE clause with args, or
// empty), oldest first.
func (db *DB) findAPIKeys(ctx context.Context, where string, args ...any) ([]*simgate.APIKey, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT id, name, prefix, hash, scopes, services, created_at, revoked_at, last_used_at
		FROM api_keys `+where+`
		ORDER BY created_at, id
	`, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot find api keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*simgate.APIKey, error) {
		var k simgate.APIKey
		var scopes, services string
		var createdAt int64
		var revokedAt, lastUsedAt *int64
		if err := row.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &scopes, &services, &createdAt, &revokedAt, &lastUsedAt); err != nil {
			return nil, err
		}
		k.Services = simgate.ParseServices(services)
		var err error
		if k.Scopes, err = simgate.ParseScopes(scopes); err != nil {
			return nil, fmt.Errorf("key %s: %w", k.ID, err)
		}
		k.CreatedAt, k.RevokedAt, k.LastUsedAt = time.UnixMilli(createdAt).UTC(), fromMillis(revokedAt), fromMillis(lastUsedAt)
		return &k, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot find api keys: %w", err)
	}
	if keys == nil {
		keys = []*simgate.APIKey{}
	}
	return keys, nil
}
