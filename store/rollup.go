package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/simgate/simgate"
)

// RecordSample adds s to the rollups of the current UTC hour (by the store's
// clock): one signal sample for each modem in s.Signal, whose hourly average
// the console shows, and one queue sample, of which the hour keeps the
// peaks. In the same transaction it deletes the rollups and balance readings
// older than RollupRetention, so whoever samples also prunes.
func (db *DB) RecordSample(ctx context.Context, s simgate.Sample) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot record sample: %w", err)
	}
	defer tx.Rollback()
	hour := simgate.HourStart(tx.now)
	ids := make([]string, 0, len(s.Signal))
	for id := range s.Signal {
		ids = append(ids, id)
	}
	sort.Strings(ids) // one order of writes, for reproducible databases
	for _, id := range ids {
		if id == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO modem_hourly (hour, modem_id, signal_sum, signal_samples) VALUES (?, ?, ?, 1)
			ON CONFLICT (hour, modem_id) DO UPDATE SET
				signal_sum = signal_sum + excluded.signal_sum, signal_samples = signal_samples + 1
		`, hour, id, s.Signal[id]); err != nil {
			return fmt.Errorf("cannot record signal sample: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO queue_hourly (hour, samples, depth_max, oldest_age_max) VALUES (?, 1, ?, ?)
		ON CONFLICT (hour) DO UPDATE SET samples = samples + 1,
			depth_max = max(depth_max, excluded.depth_max), oldest_age_max = max(oldest_age_max, excluded.oldest_age_max)
	`, hour, max(s.QueueDepth, 0), max(s.OldestQueuedAge.Milliseconds(), 0)); err != nil {
		return fmt.Errorf("cannot record queue sample: %w", err)
	}
	cutoff := hour - simgate.RollupRetention.Milliseconds()
	for _, q := range []string{
		`DELETE FROM modem_hourly WHERE hour < ?`,
		`DELETE FROM queue_hourly WHERE hour < ?`,
		`DELETE FROM sim_balances WHERE at < ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, cutoff); err != nil {
			return fmt.Errorf("cannot prune rollups: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot record sample: %w", err)
	}
	return nil
}

// ModemHours returns the hourly rollups of every modem for the hours that
// began at or after since, oldest first, then by modem id. Hours in which a
// modem sent nothing and was not sampled have no row.
func (db *DB) ModemHours(ctx context.Context, since time.Time) ([]simgate.ModemHour, error) {
	rows, err := db.reader.QueryContext(ctx, `
		SELECT hour, modem_id, sent, delivered, failed, signal_sum, signal_samples
		FROM modem_hourly WHERE hour >= ? ORDER BY hour, modem_id
	`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("cannot read modem rollups: %w", err)
	}
	defer rows.Close()
	var hs []simgate.ModemHour
	for rows.Next() {
		var h simgate.ModemHour
		var hour, sum int64
		if err := rows.Scan(&hour, &h.ModemID, &h.Sent, &h.Delivered, &h.Failed, &sum, &h.SignalSamples); err != nil {
			return nil, fmt.Errorf("cannot read modem rollups: %w", err)
		}
		h.Hour = time.UnixMilli(hour).UTC()
		if h.SignalSamples > 0 {
			h.SignalDBm = float64(sum) / float64(h.SignalSamples)
		}
		hs = append(hs, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read modem rollups: %w", err)
	}
	return hs, nil
}

// QueueHours returns the queue's hourly rollups for the hours that began at
// or after since, oldest first. Hours without samples have no row.
func (db *DB) QueueHours(ctx context.Context, since time.Time) ([]simgate.QueueHour, error) {
	rows, err := db.reader.QueryContext(ctx, `
		SELECT hour, samples, depth_max, oldest_age_max FROM queue_hourly WHERE hour >= ? ORDER BY hour
	`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("cannot read queue rollups: %w", err)
	}
	defer rows.Close()
	var hs []simgate.QueueHour
	for rows.Next() {
		var h simgate.QueueHour
		var hour, age int64
		if err := rows.Scan(&hour, &h.Samples, &h.MaxDepth, &age); err != nil {
			return nil, fmt.Errorf("cannot read queue rollups: %w", err)
		}
		h.Hour = time.UnixMilli(hour).UTC()
		h.MaxOldestAge = time.Duration(age) * time.Millisecond
		hs = append(hs, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read queue rollups: %w", err)
	}
	return hs, nil
}

// RecordBalance stores a reading of modemID's balance taken at at (the
// store's clock when zero): raw is the text the network answered, amount the
// number read from it, nil when it could not be parsed. simgate.BalanceText
// says what is kept and what is refused.
func (db *DB) RecordBalance(ctx context.Context, modemID string, at time.Time, amount *float64, raw string) error {
	raw, err := simgate.BalanceText(modemID, amount, raw)
	if err != nil {
		return err
	}
	var amt any
	ok := 0
	if amount != nil {
		amt, ok = *amount, 1
	}
	_, err = db.execAlone(ctx, "record balance", func(tx *tx) (sql.Result, error) {
		if at.IsZero() {
			at = tx.now
		}
		return tx.ExecContext(ctx, `
			INSERT INTO sim_balances (modem_id, at, amount, raw, ok) VALUES (?, ?, ?, ?, ?)
		`, modemID, at.UnixMilli(), amt, raw, ok)
	})
	return err
}

// Balances returns the balance readings of every modem taken at or after
// since, oldest first.
func (db *DB) Balances(ctx context.Context, since time.Time) ([]simgate.BalanceReading, error) {
	rows, err := db.reader.QueryContext(ctx, `
		SELECT modem_id, at, amount, currency, raw FROM sim_balances WHERE at >= ? ORDER BY at, rowid
	`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("cannot read balances: %w", err)
	}
	defer rows.Close()
	var bs []simgate.BalanceReading
	for rows.Next() {
		var b simgate.BalanceReading
		var at int64
		var amount *float64
		if err := rows.Scan(&b.ModemID, &at, &amount, &b.Currency, &b.Raw); err != nil {
			return nil, fmt.Errorf("cannot read balances: %w", err)
		}
		b.At, b.Amount = time.UnixMilli(at).UTC(), amount
		bs = append(bs, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read balances: %w", err)
	}
	return bs, nil
}
