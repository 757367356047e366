package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store/internal/rowcodec"
)

// CreateService stores s as it is, giving it an id when it has none
// (simgate.NewServiceID), and sets its creation and update times to now.
// It checks only what the database needs (simgate.Service.CheckCreate):
// whether the settings suit the gateway is verify's to check first. It
// returns CodeInvalid for a malformed service and CodeConflict for an id
// that exists.
func (db *DB) CreateService(ctx context.Context, s *simgate.Service) error {
	templates, countries, err := rowcodec.NewServiceRow(s)
	if err != nil {
		return err
	}
	custom := 0
	if s.CustomCodeAllowed {
		custom = 1
	}
	now := db.txNow()
	if _, err := db.pool.Exec(ctx, `
		INSERT INTO services (id, friendly_name, code_length, ttl_ms, templates, allowed_countries,
		                      custom_code_allowed, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
	`, s.ID, s.FriendlyName, s.CodeLength, s.TTL.Milliseconds(), templates, countries, custom, now.UnixMilli()); isUniqueViolation(err) {
		return simgate.Errorf(simgate.CodeConflict, "service %s exists", s.ID)
	} else if err != nil {
		return fmt.Errorf("cannot create service: %w", unavailable(err))
	}
	s.CreatedAt, s.UpdatedAt = now, now
	return nil
}

// FindService returns the service with the given id;
// simgate.ServiceNotFound when there is none.
func (db *DB) FindService(ctx context.Context, id string) (*simgate.Service, error) {
	ss, err := db.findServices(ctx, `WHERE id = $2`, id)
	if err != nil {
		return nil, err
	} else if len(ss) == 0 {
		return nil, simgate.ServiceNotFound(id)
	}
	return ss[0], nil
}

// ListServices returns every service: the default service first, then the
// others, oldest first.
func (db *DB) ListServices(ctx context.Context) ([]*simgate.Service, error) {
	return db.findServices(ctx, ``)
}

// findServices returns the services matching where (a WHERE clause whose
// arguments start at $2, or empty), the default service first, then oldest
// first.
func (db *DB) findServices(ctx context.Context, where string, args ...any) ([]*simgate.Service, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT id, friendly_name, code_length, ttl_ms, templates, allowed_countries, custom_code_allowed,
		       created_at, updated_at
		FROM services `+where+`
		ORDER BY id <> $1, created_at, id
	`, append([]any{simgate.DefaultServiceID}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot find services: %w", unavailable(err))
	}
	ss, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*simgate.Service, error) {
		var s simgate.Service
		var ttl, custom, createdAt, updatedAt int64
		var templates, countries string
		if err := row.Scan(&s.ID, &s.FriendlyName, &s.CodeLength, &ttl, &templates, &countries, &custom,
			&createdAt, &updatedAt); err != nil {
			return nil, err
		}
		if err := rowcodec.SetServiceColumns(&s, templates, countries); err != nil {
			return nil, err
		}
		s.TTL = time.Duration(ttl) * time.Millisecond
		s.CustomCodeAllowed = custom == 1
		s.CreatedAt, s.UpdatedAt = time.UnixMilli(createdAt).UTC(), time.UnixMilli(updatedAt).UTC()
		return &s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot find services: %w", unavailable(err))
	}
	if ss == nil {
		ss = []*simgate.Service{}
	}
	return ss, nil
}
