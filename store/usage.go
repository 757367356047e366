package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/simgate/simgate"
)

// UpsertModem records that the configured modem id is the hardware ident,
// creating its row when missing. An IMEI now seen under another name is
// moved to this one: the IMEI is what makes a modem the same modem.
func (db *DB) UpsertModem(ctx context.Context, id string, ident simgate.ModemIdentity) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot record modem: %w", err)
	}
	defer tx.Rollback()
	if ident.IMEI != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE modems SET imei = NULL WHERE imei = ? AND id <> ?`, ident.IMEI, id); err != nil {
			return fmt.Errorf("cannot record modem: %w", err)
		}
	}
	now := tx.now.UnixMilli()
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO modems (id, imei, iccid, imsi, manufacturer, model, revision, first_seen, last_seen)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			imei = coalesce(excluded.imei, imei),
			iccid = CASE WHEN excluded.iccid <> '' THEN excluded.iccid ELSE iccid END,
			imsi = CASE WHEN excluded.imsi <> '' THEN excluded.imsi ELSE imsi END,
			manufacturer = CASE WHEN excluded.manufacturer <> '' THEN excluded.manufacturer ELSE manufacturer END,
			model = CASE WHEN excluded.model <> '' THEN excluded.model ELSE model END,
			revision = CASE WHEN excluded.revision <> '' THEN excluded.revision ELSE revision END,
			last_seen = excluded.last_seen
	`, id, nullIfEmpty(ident.IMEI), ident.ICCID, ident.IMSI, ident.Manufacturer, ident.Model, ident.Revision, now, now); err != nil {
		return fmt.Errorf("cannot record modem: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot record modem: %w", err)
	}
	return nil
}

// LoadUsage returns the SMS counted for modemID on the UTC day day
// ("2006-01-02"), 0 when none: the parts the queue recorded as sent by it,
// or maybe sent (simgate.MessageTx.AddUsage). It makes DB a modem.UsageStore.
func (db *DB) LoadUsage(ctx context.Context, modemID, day string) (int, error) {
	var n int
	err := db.reader.QueryRowContext(ctx, `
		SELECT sent FROM modem_daily_usage WHERE modem_id = ? AND day = ?
	`, modemID, day).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("cannot load daily usage: %w", err)
	}
	return n, nil
}

// addUsage adds n SMS sent at sent to modemID's count for that UTC day and
// to its sent counter, creating the modem's row when missing.
func addUsage(ctx context.Context, tx *tx, modemID string, sent time.Time, n int) error {
	now := tx.now.UnixMilli()
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO modems (id, first_seen, last_seen, sent) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET sent = sent + excluded.sent
	`, modemID, now, now, n); err != nil {
		return fmt.Errorf("cannot add daily usage: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO modem_daily_usage (modem_id, day, sent) VALUES (?, ?, ?)
		ON CONFLICT (modem_id, day) DO UPDATE SET sent = sent + excluded.sent
	`, modemID, sent.UTC().Format("2006-01-02"), n); err != nil {
		return fmt.Errorf("cannot add daily usage: %w", err)
	}
	return nil
}
