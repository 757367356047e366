package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
)

// RecordSample adds s to the rollups of the current UTC hour (by the store's
// clock): one signal sample for each modem in s.Signal, whose hourly average
// the console shows, and one queue sample, of which the hour keeps the
// peaks. In the same transaction it deletes the rollups and balance readings
// older than simgate.RollupRetention, so whoever samples also prunes. Hosts
// that sample at once add to the same rows: the upserts add, they do not
// overwrite.
func (db *DB) RecordSample(ctx context.Context, s simgate.Sample) error {
	err := db.update(ctx, "sample", func(tx *tx) error {
		hour := simgate.HourStart(tx.now)
		ids := make([]string, 0, len(s.Signal))
		for id := range s.Signal {
			if id != "" {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids) // one order of row locks for every host
		for _, id := range ids {
			if _, err := tx.Exec(ctx, `
				INSERT INTO modem_hourly (hour, modem_id, signal_sum, signal_samples) VALUES ($1, $2, $3, 1)
				ON CONFLICT (hour, modem_id) DO UPDATE SET
					signal_sum = modem_hourly.signal_sum + excluded.signal_sum, signal_samples = modem_hourly.signal_samples + 1
			`, hour, id, s.Signal[id]); err != nil {
				return fmt.Errorf("signal sample: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO queue_hourly (hour, samples, depth_max, oldest_age_max) VALUES ($1, 1, $2, $3)
			ON CONFLICT (hour) DO UPDATE SET samples = queue_hourly.samples + 1,
				depth_max = GREATEST(queue_hourly.depth_max, excluded.depth_max),
				oldest_age_max = GREATEST(queue_hourly.oldest_age_max, excluded.oldest_age_max)
		`, hour, max(s.QueueDepth, 0), max(s.OldestQueuedAge.Milliseconds(), 0)); err != nil {
			return fmt.Errorf("queue sample: %w", err)
		}
		cutoff := hour - simgate.RollupRetention.Milliseconds()
		for _, q := range []string{
			`DELETE FROM modem_hourly WHERE hour < $1`,
			`DELETE FROM queue_hourly WHERE hour < $1`,
			`DELETE FROM sim_balances WHERE at < $1`,
		} {
			if _, err := tx.Exec(ctx, q, cutoff); err != nil {
				return fmt.Errorf("prune: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot record sample: %w", err)
	}
	return nil
}

// ModemHours returns the hourly rollups of every modem for the hours that
// began at or after since, oldest first, then by modem id. Hours in which a
// modem sent nothing and was not sampled have no row.
func (db *DB) ModemHours(ctx context.Context, since time.Time) ([]simgate.ModemHour, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT hour, modem_id, sent, delivered, failed, signal_sum, signal_samples
		FROM modem_hourly WHERE hour >= $1 ORDER BY hour, modem_id
	`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("cannot read modem rollups: %w", err)
	}
	hs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (simgate.ModemHour, error) {
		var h simgate.ModemHour
		var hour, sum int64
		if err := row.Scan(&hour, &h.ModemID, &h.Sent, &h.Delivered, &h.Failed, &sum, &h.SignalSamples); err != nil {
			return h, err
		}
		h.Hour = time.UnixMilli(hour).UTC()
		if h.SignalSamples > 0 {
			h.SignalDBm = float64(sum) / float64(h.SignalSamples)
		}
		return h, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read modem rollups: %w", err)
	}
	return hs, nil
}

// QueueHours returns the queue's hourly rollups for the hours that began at
// or after since, oldest first. Hours without samples have no row.
func (db *DB) QueueHours(ctx context.Context, since time.Time) ([]simgate.QueueHour, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT hour, samples, depth_max, oldest_age_max FROM queue_hourly WHERE hour >= $1 ORDER BY hour
	`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("cannot read queue rollups: %w", err)
	}
	hs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (simgate.QueueHour, error) {
		var h simgate.QueueHour
		var hour, age int64
		if err := row.Scan(&hour, &h.Samples, &h.MaxDepth, &age); err != nil {
			return h, err
		}
		h.Hour = time.UnixMilli(hour).UTC()
		h.MaxOldestAge = time.Duration(age) * time.Millisecond
		return h, nil
	})
	if err != nil {
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
	ok := 0
	if amount != nil {
		ok = 1
	}
	if at.IsZero() {
		at = db.txNow()
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO sim_balances (modem_id, at, amount, raw, ok) VALUES ($1, $2, $3, $4, $5)`,
		modemID, at.UnixMilli(), amount, raw, ok); err != nil {
		return fmt.Errorf("cannot record balance: %w", err)
	}
	return nil
}

// Balances returns the balance readings of every modem taken at or after
// since, oldest first.
func (db *DB) Balances(ctx context.Context, since time.Time) ([]simgate.BalanceReading, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT modem_id, at, amount, currency, raw FROM sim_balances WHERE at >= $1 ORDER BY at, rowid
	`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("cannot read balances: %w", err)
	}
	bs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (simgate.BalanceReading, error) {
		var b simgate.BalanceReading
		var at int64
		if err := row.Scan(&b.ModemID, &at, &b.Amount, &b.Currency, &b.Raw); err != nil {
			return b, err
		}
		b.At = time.UnixMilli(at).UTC()
		return b, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read balances: %w", err)
	}
	return bs, nil
}
