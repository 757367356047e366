package postgres

import (
	"context"
	"fmt"

	"github.com/simgate/simgate"
)

// UpsertModem records that the configured modem id is the hardware ident,
// creating its row when missing. An IMEI now seen under another name is
// moved to this one: the IMEI is what makes a modem the same modem. Each
// host records only its own modems, but a modem moved between hosts may be
// recorded by both at once: the rows are locked in id order (the other
// name's first when it sorts first), so that two such records wait for each
// other instead of deadlocking.
func (db *DB) UpsertModem(ctx context.Context, id string, ident simgate.ModemIdentity) error {
	err := db.update(ctx, "modem", func(tx *tx) error {
		if ident.IMEI != "" {
			if _, err := tx.Exec(ctx, `
				UPDATE modems SET imei = NULL
				WHERE id IN (SELECT id FROM modems WHERE imei = $1 AND id <> $2 ORDER BY id FOR UPDATE)
			`, ident.IMEI, id); err != nil {
				return err
			}
		}
		var imei any
		if ident.IMEI != "" {
			imei = ident.IMEI
		}
		now := tx.now.UnixMilli()
		_, err := tx.Exec(ctx, `
			INSERT INTO modems (id, imei, iccid, imsi, manufacturer, model, revision, first_seen, last_seen)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (id) DO UPDATE SET
				imei = coalesce(excluded.imei, modems.imei),
				iccid = CASE WHEN excluded.iccid <> '' THEN excluded.iccid ELSE modems.iccid END,
				imsi = CASE WHEN excluded.imsi <> '' THEN excluded.imsi ELSE modems.imsi END,
				manufacturer = CASE WHEN excluded.manufacturer <> '' THEN excluded.manufacturer ELSE modems.manufacturer END,
				model = CASE WHEN excluded.model <> '' THEN excluded.model ELSE modems.model END,
				revision = CASE WHEN excluded.revision <> '' THEN excluded.revision ELSE modems.revision END,
				last_seen = excluded.last_seen
		`, id, imei, ident.ICCID, ident.IMSI, ident.Manufacturer, ident.Model, ident.Revision, now, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("cannot record modem: %w", err)
	}
	return nil
}
