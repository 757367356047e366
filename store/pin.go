package store

import (
	"context"
	"database/sql"
	"fmt"
)

// PINRejected reports whether the SIM iccid rejected the PIN with
// fingerprint fp (modem.PINFingerprint).
func (db *DB) PINRejected(ctx context.Context, iccid string, fp []byte) (bool, error) {
	var n int
	err := db.reader.QueryRowContext(ctx, `SELECT count(*) FROM rejected_pins WHERE iccid = ? AND fingerprint = ?`, iccid, fp).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("cannot look up rejected PINs: %w", err)
	}
	return n > 0, nil
}

// RecordRejectedPIN remembers that the SIM iccid rejected the PIN with
// fingerprint fp.
func (db *DB) RecordRejectedPIN(ctx context.Context, iccid string, fp []byte) error {
	_, err := db.execAlone(ctx, "record a rejected PIN", func(tx *tx) (sql.Result, error) {
		return tx.ExecContext(ctx, `INSERT INTO rejected_pins (iccid, fingerprint, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			iccid, fp, tx.now.UnixMilli())
	})
	return err
}
