package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

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
	return db.update(ctx, "service", func(tx *tx) error {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO services (id, friendly_name, code_length, ttl_ms, templates, allowed_countries,
			                      custom_code_allowed, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		`, s.ID, s.FriendlyName, s.CodeLength, s.TTL.Milliseconds(), templates, countries, s.CustomCodeAllowed,
			tx.now.UnixMilli(), tx.now.UnixMilli()); isUniqueViolation(err) {
			return simgate.Errorf(simgate.CodeConflict, "service %s exists", s.ID)
		} else if err != nil {
			return fmt.Errorf("cannot create service: %w", err)
		}
		s.CreatedAt, s.UpdatedAt = tx.now, tx.now
		return nil
	})
}

// FindService returns the service with the given id;
// simgate.ServiceNotFound when there is none.
func (db *DB) FindService(ctx context.Context, id string) (*simgate.Service, error) {
	ss, err := db.findServices(ctx, `WHERE id = ?`, id)
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

// findServices returns the services matching where (a WHERE clause, or
// empty), the default service first, then oldest first.
func (db *DB) findServices(ctx context.Context, where string, args ...any) ([]*simgate.Service, error) {
	rows, err := db.reader.QueryContext(ctx, `
		SELECT id, friendly_name, code_length, ttl_ms, templates, allowed_countries, custom_code_allowed,
		       created_at, updated_at
		FROM services `+where+`
		ORDER BY id <> ?, created_at, id
	`, append(args, simgate.DefaultServiceID)...)
	if err != nil {
		return nil, fmt.Errorf("cannot find services: %w", err)
	}
	defer rows.Close()
	ss := []*simgate.Service{}
	for rows.Next() {
		var s simgate.Service
		var ttl, createdAt, updatedAt int64
		var templates, countries string
		if err := rows.Scan(&s.ID, &s.FriendlyName, &s.CodeLength, &ttl, &templates, &countries, &s.CustomCodeAllowed,
			&createdAt, &updatedAt); err != nil {
			return nil, fmt.Errorf("cannot find services: %w", err)
		}
		if err := rowcodec.SetServiceColumns(&s, templates, countries); err != nil {
			return nil, err
		}
		s.TTL = time.Duration(ttl) * time.Millisecond
		s.CreatedAt = fromMillis(sql.NullInt64{Int64: createdAt, Valid: true})
		s.UpdatedAt = fromMillis(sql.NullInt64{Int64: updatedAt, Valid: true})
		ss = append(ss, &s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot find services: %w", err)
	}
	return ss, nil
}
